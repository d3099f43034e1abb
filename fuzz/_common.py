"""Shared plumbing for the atheris harnesses in this directory.

Each harness module defines ``TARGET`` (the decoder it exercises), ``test_one_input(data)``
and ``seeds()`` (valid inputs to start the corpus from). A harness lets the project's own
errors (:class:`attquic.errors.AttquicError`) through silently; anything else that escapes a
decoder is a finding, and atheris reports it as a crash with the input that caused it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

TEST_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
"""The repository's test data (vectors and real TDX samples, see tests/data/README.md)."""


def data_files(*patterns: str) -> list[bytes]:
    """Contents of the files under tests/data matching ``patterns``; a pattern matching nothing
    is an error (the seeds would silently shrink)."""
    found: list[bytes] = []
    for pattern in patterns:
        paths = [path for path in sorted(TEST_DATA.glob(pattern)) if path.is_file()]
        if not paths:
            raise FileNotFoundError(f"no test data matches {TEST_DATA / pattern}")
        found.extend(path.read_bytes() for path in paths)
    return found


def write_seeds(corpus: Path, seeds: Iterable[bytes]) -> int:
    """Write each seed into ``corpus`` (one file each, named by index); returns the count."""
    corpus.mkdir(parents=True, exist_ok=True)
    count = 0
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index:03d}").write_bytes(seed)
        count += 1
    return count


def main(test_one_input: Callable[[bytes], None], seeds: Callable[[], Iterable[bytes]]) -> None:
    """``--write-seeds DIR`` writes the harness's seeds; anything else goes to libFuzzer."""
    import atheris

    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        write_seeds(Path(sys.argv[2]), seeds())
        return

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
