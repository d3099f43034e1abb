"""Input files for the command line: binary, or the same bytes as hex text."""

from __future__ import annotations

import binascii
import string
import sys
from pathlib import Path
from typing import Final

__all__ = ["NotHexError", "read_file", "unhex"]

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
