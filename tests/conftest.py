"""Shared fixtures: paths to ../shared test data (skip cleanly when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared test data is absent")
    return SHARED


@pytest.fixture(scope="session")
def vectors_dir(shared_dir: Path) -> Path:
    return shared_dir / "vectors"


@pytest.fixture(scope="session")
def tdx_samples_dir(shared_dir: Path) -> Path:
    return shared_dir / "tdx-samples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
