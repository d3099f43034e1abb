"""Shared fixtures: paths to the test data in tests/data (never skipped: see data_paths.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
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


@pytest.fixture(autouse=True)
def _restore_attquic_logging() -> Iterator[None]:
    """Tests that run the CLI or the examples in-process call attquic.logs.configure(): undo
    it, so later tests see the logging set-up they expect (caplog needs propagation)."""
    names = ("attquic", "quic", "py.warnings")
    saved = [
        (logging.getLogger(n), logging.getLogger(n).level, list(logging.getLogger(n).handlers),
         logging.getLogger(n).propagate)
        for n in names
    ]  # fmt: skip
    yield
    logging.captureWarnings(False)
    for logger, level, handlers, propagate in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
