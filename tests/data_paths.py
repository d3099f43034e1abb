"""Where the test suite's data lives: ``tests/data`` in this repository (see its README.md).

Every test that reads a vector or a real TDX sample takes its path from here, so that a clone of
the repository alone runs the whole suite. Nothing here checks that a file exists: a missing data
file makes the test that reads it fail (or the module that parametrizes over it fail to collect),
it never skips.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
"""The root of the test data."""

VECTORS = DATA / "vectors"
"""RFC 9261 (Fizz), RFC 8448, CMW, EAR and Merkle inclusion-proof vectors."""

TDX_SAMPLES = DATA / "tdx-samples"
"""Real Intel TDX quotes with their DCAP collateral, and the Intel SGX root certificate."""
