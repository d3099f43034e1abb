"""The ``attquic`` command line: ``attquic ea|cmw|quote|verifier ...``.

Each subcommand group lives in its own module with ``register(subparsers)``. Exit codes: 0 ok,
1 rejected (verification verdicts), 2 unusable input (one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

import structlog

_GROUPS = ("ea", "cmw", "quote", "verifier")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attquic", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="group", required=True)
    for name in _GROUPS:
        importlib.import_module(f"attquic._cli.{name}").register(sub)
    return parser


def _log_to_stderr() -> None:
    """Keep stdout for the command's output (``--json`` must stay parseable)."""
    if structlog.is_configured():
        return
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        # resolve sys.stderr when a logger is created, not now: it may be replaced later
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
    )


def main(argv: Sequence[str] | None = None) -> int:
    _log_to_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
