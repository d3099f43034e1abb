"""The ``attquic`` command line: ``attquic ea|cmw|quote|verifier ...``.

Each subcommand group lives in its own module with ``register(subparsers)``. Exit codes: 0 ok,
1 rejected (verification verdicts), 2 unusable input (one-line reason on stderr). Log lines
(attquic's standard-library loggers) go to stderr, so stdout carries only the command's output.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from attquic import __version__, logs

_GROUPS = ("ea", "cmw", "quote", "verifier")

# reST markup of the modules' docstrings, reused as help texts: ``x``, :role:`x`, `x`
_LITERAL = re.compile(r"``([^`]+)``")
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_INTERPRETED = re.compile(r"`([^`]+)`")


def plain_text(text: str) -> str:
    """``text`` without reST markup (for help texts taken from docstrings)."""
    return _INTERPRETED.sub(r"\1", _ROLE.sub(r"\1", _LITERAL.sub(r"\1", text)))


class _PlainHelpFormatter(argparse.HelpFormatter):
    """Strips reST markup before argparse wraps descriptions and help strings."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain_text(text))

    def _expand_help(self, action: argparse.Action) -> str:
        return plain_text(super()._expand_help(action))


class _Parser(argparse.ArgumentParser):
    """Every parser of the command (sub-parsers inherit the class) formats plain help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _PlainHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="attquic",
        description="attquic command line: decode RFC 9261 authenticators and CMWs, show, "
        "verify and simulate TDX quotes, run the EAR verifier service.",
    )
    parser.add_argument("--version", action="version", version=f"attquic {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level (stderr)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log errors only (stderr)")
    sub = parser.add_subparsers(dest="group", metavar="{" + ",".join(_GROUPS) + "}")
    for name in _GROUPS:
        importlib.import_module(f"attquic._cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.group is None:  # bare `attquic`: show what there is
        parser.print_help()
        return 0
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.INFO
    logs.configure(level)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
