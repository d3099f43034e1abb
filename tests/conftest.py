"""Shared fixtures: paths to the test data in tests/data (never skipped: see data_paths.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_paths import TDX_SAMPLES, VECTORS


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS


@pytest.fixture(scope="session")
def tdx_samples_dir() -> Path:
    return TDX_SAMPLES


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
