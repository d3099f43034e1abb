"""The ``attquic`` command line: ``attquic ea|cmw|quote ...``.

Each subcommand group lives in its own module with ``register(subparsers)``. Exit codes: 0 ok,
1 rejected (verification verdicts), 2 unusable input (one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

_GROUPS = ("ea", "cmw", "quote")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attquic", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="group", required=True)
    for name in _GROUPS:
        importlib.import_module(f"attquic._cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
