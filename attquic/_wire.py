"""Bounds-checked byte reading and writing for TLS presentation-language and QUIC varints.

Every read failure raises the :class:`~attquic.errors.DecodeError` subclass the caller chose,
so codecs built on :class:`Reader` raise only their own error on any input.
"""

from __future__ import annotations

from attquic.errors import DecodeError

__all__ = ["Reader", "encode_varint", "u8", "u16", "u24", "u32", "vec8", "vec16", "vec24"]

_VARINT_MAX = (1 << 62) - 1


class Reader:
    """A cursor over ``data``; reads past the end raise ``error`` (a DecodeError subclass)."""

    __slots__ = ("_data", "_error", "_pos")

    def __init__(self, data: bytes, error: type[DecodeError] = DecodeError) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._error = error

    @property
    def position(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def fail(self, reason: str) -> DecodeError:
        """An exception of this reader's error class (for the caller to raise)."""
        return self._error(reason)

    def read(self, n: int, what: str = "field") -> bytes:
        pos = self._pos
        end = pos + n
        if n < 0 or end > len(self._data):
            raise self._error(
                f"truncated {what}: need {n} bytes at offset {pos}, have {len(self._data) - pos}"
            )
        self._pos = end
        return self._data[pos:end]

    # The fixed-size readers below inline the bounds check (they run dozens of times per
    # exchange); a short input goes through read() for its exact error.

    def _uint(self, size: int, what: str) -> int:
        pos = self._pos
        end = pos + size
        if end > len(self._data):
            self.read(size, what)  # raises
        self._pos = end
        return int.from_bytes(self._data[pos:end], "big")

    def u8(self, what: str = "uint8") -> int:
        pos = self._pos
        if pos >= len(self._data):
            self.read(1, what)  # raises
        self._pos = pos + 1
        return self._data[pos]

    def u16(self, what: str = "uint16") -> int:
        return self._uint(2, what)

    def u24(self, what: str = "uint24") -> int:
        return self._uint(3, what)

    def u32(self, what: str = "uint32") -> int:
        return self._uint(4, what)

    def _vector(self, size: int, what: str) -> bytes:
        data = self._data
        pos = self._pos
        start = pos + size
        if start > len(data):
            self.read(size, what + " length")  # raises
        self._pos = start
        return self.read(int.from_bytes(data[pos:start], "big"), what)

    def vec8(self, what: str = "vector") -> bytes:
        return self._vector(1, what)

    def vec16(self, what: str = "vector") -> bytes:
        return self._vector(2, what)

    def vec24(self, what: str = "vector") -> bytes:
        return self._vector(3, what)

    def varint(self, what: str = "varint") -> int:
        """A QUIC variable-length integer (RFC 9000 §16)."""
        first = self.read(1, what)[0]
        length = 1 << (first >> 6)
        value = first & 0x3F
        for byte in self.read(length - 1, what):
            value = (value << 8) | byte
        return value

    def rest(self) -> bytes:
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out

    def expect_end(self, what: str = "message") -> None:
        if self.remaining:
            raise self._error(f"{self.remaining} trailing bytes after {what}")


def _uint(value: int, size: int) -> bytes:
    if not 0 <= value < (1 << (8 * size)):
        raise OverflowError(f"{value} does not fit in {size} bytes")
    return value.to_bytes(size, "big")


def u8(value: int) -> bytes:
    return _uint(value, 1)


def u16(value: int) -> bytes:
    return _uint(value, 2)


def u24(value: int) -> bytes:
    return _uint(value, 3)


def u32(value: int) -> bytes:
    return _uint(value, 4)


def vec8(data: bytes) -> bytes:
    return u8(len(data)) + data


def vec16(data: bytes) -> bytes:
    return u16(len(data)) + data


def vec24(data: bytes) -> bytes:
    return u24(len(data)) + data


def encode_varint(value: int) -> bytes:
    """The shortest QUIC variable-length encoding of ``value``."""
    if value < 0 or value > _VARINT_MAX:
        raise OverflowError(f"{value} is not a QUIC varint")
    if value < 1 << 6:
        return value.to_bytes(1, "big")
    if value < 1 << 14:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 1 << 30:
        return (value | 0x8000_0000).to_bytes(4, "big")
    return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")
