"""Input files for the command line: binary, or the same bytes as hex text."""

from __future__ import annotations

import argparse
import binascii
import datetime
import string
import sys
import time
from pathlib import Path
from typing import Final

__all__ = ["NotHexError", "parse_time", "read_file", "unhex"]

_HEX_TEXT: Final = frozenset((string.hexdigits + string.whitespace).encode())


class NotHexError(ValueError):
    """The input looks like hex text but does not decode."""


def read_file(path: str | Path) -> bytes:
    """The bytes of ``path``; ``-`` reads standard input. Raises OSError."""
    if str(path) == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def unhex(raw: bytes) -> bytes:
    """``raw`` decoded if it is hex text (whitespace and a ``0x`` prefix allowed), else ``raw``.

    Raises :class:`NotHexError` for text made of hex digits that does not decode (odd length).
    """
    text = raw.strip()
    if text[:2].lower() == b"0x":
        text = text[2:]
    if not text or not all(byte in _HEX_TEXT for byte in text):
        return raw
    try:
        return binascii.unhexlify(b"".join(text.split()))
    except (binascii.Error, ValueError):
        raise NotHexError("input looks like hex but does not decode") from None


def parse_time(text: str) -> float:
    """A point in time for ``--at``: ``now``, Unix seconds, or ISO-8601 (no zone = UTC).

    For argparse's ``type=``: raises :class:`argparse.ArgumentTypeError` with the accepted forms.
    """
    value = text.strip()
    if value.lower() == "now":
        return time.time()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: give 'now', Unix seconds (1796036349) or ISO-8601 "
            "(2026-12-01T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()
