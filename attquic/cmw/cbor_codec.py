"""CBOR serialisation of CMW: records, RFC 9277 tags and collections.

The decoder reads exactly the CBOR subset a CMW can hold (unsigned and negative integers, byte
and text strings, arrays, maps, tags) straight into the typed model, so it never builds a
generic CBOR tree. It accepts definite and indefinite lengths and non-preferred integer
encodings, checks every declared length against the bytes left before reading (no allocation
beyond the input), detects duplicate map keys, limits collection nesting, and rejects trailing
bytes. Every failure is a :class:`~attquic.errors.CMWError`.

The encoder always writes preferred serialisation with definite lengths. Collections are
written with ``__cmwc_t`` first and then the items in their stored order, which re-encodes a
decoded CMW to the bytes it came from when those used preferred serialisation; with
``deterministic=True`` map keys are sorted by their encoded bytes (RFC 8949 §4.2.1).
"""

from __future__ import annotations

from typing import Final

from attquic.cmw.errors import (
    CMWError,
    DepthExceeded,
    DuplicateLabel,
    InvalidLabel,
    InvalidRecord,
    MalformedEncoding,
    TrailingBytes,
    WrongType,
    in_member,
)
from attquic.cmw.model import (
    CMW,
    CMWC_T,
    CMWCollection,
    CMWRecord,
    CMWTag,
    Label,
    cf_from_tn,
)

__all__ = ["DEFAULT_MAX_DEPTH", "decode_cbor", "encode_cbor"]

#: Default limit on nested collections (a top-level collection is depth 1).
DEFAULT_MAX_DEPTH: Final = 16

_UINT, _NINT, _BYTES, _TEXT, _ARRAY, _MAP, _TAG, _SIMPLE = range(8)
_INDEFINITE: Final = 31
_BREAK: Final = 0xFF
_MAJOR_NAMES: Final = (
    "an unsigned integer",
    "a negative integer",
    "a byte string",
    "a text string",
    "an array",
    "a map",
    "a tag",
    "a float or simple value",
)

# --- decoding --------------------------------------------------------------------------------


class _Head:
    """An initial byte and its argument; ``argument`` is None for an indefinite length."""

    __slots__ = ("argument", "major")

    def __init__(self, major: int, argument: int | None) -> None:
        self.major = major
        self.argument = argument

    @property
    def kind(self) -> str:
        return _MAJOR_NAMES[self.major]


# Heads whose argument is in the initial byte, built once (a _Head is never modified).
_SHORT_DECODED_HEADS: Final = {
    initial: _Head(initial >> 5, initial & 0x1F) for initial in range(256) if initial & 0x1F < 24
}


class _Decoder:
    def __init__(self, data: bytes, max_depth: int) -> None:
        self._data = data
        self._pos = 0
        self._max_depth = max_depth

    # low level

    def _take(self, n: int, what: str) -> bytes:
        pos = self._pos
        end = pos + n
        if end > len(self._data):
            raise MalformedEncoding(
                f"truncated {what}: need {n} bytes at offset {pos}, have {len(self._data) - pos}"
            )
        self._pos = end
        return self._data[pos:end]

    def _head(self, what: str) -> _Head:
        data = self._data
        pos = self._pos
        if pos >= len(data):
            self._take(1, what)  # raises
        initial = data[pos]
        self._pos = pos + 1
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return _SHORT_DECODED_HEADS[initial]
        if info <= 27:
            size = 1 << (info - 24)
            return _Head(major, int.from_bytes(self._take(size, what), "big"))
        if info == _INDEFINITE and major in (_BYTES, _TEXT, _ARRAY, _MAP):
            return _Head(major, None)
        if info == _INDEFINITE and major == _SIMPLE:
            raise MalformedEncoding(f"unexpected break code in {what} at offset {self._pos - 1}")
        raise MalformedEncoding(f"reserved CBOR initial byte 0x{initial:02x} in {what}")

    def _at_break(self) -> bool:
        if self._pos >= len(self._data):
            raise MalformedEncoding("truncated indefinite-length item: no break code")
        if self._data[self._pos] == _BREAK:
            self._pos += 1
            return True
        return False

    def _string_body(self, head: _Head, what: str) -> bytes:
        if head.argument is not None:
            return self._take(head.argument, what)
        chunks = []
        while not self._at_break():
            chunk = self._head(what)
            if chunk.major != head.major or chunk.argument is None:
                raise MalformedEncoding(f"invalid chunk ({chunk.kind}) in indefinite {what}")
            chunks.append(self._take(chunk.argument, what))
        return b"".join(chunks)

    @staticmethod
    def _utf8(raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedEncoding(f"{what} is not valid UTF-8") from exc

    def _text_body(self, head: _Head, what: str) -> str:
        if head.argument is not None:
            return self._utf8(self._take(head.argument, what), what)
        # RFC 8949 §3.2.3: each chunk of an indefinite text string is valid UTF-8 on its own.
        parts = []
        while not self._at_break():
            chunk = self._head(what)
            if chunk.major != _TEXT or chunk.argument is None:
                raise MalformedEncoding(f"invalid chunk ({chunk.kind}) in indefinite {what}")
            parts.append(self._utf8(self._take(chunk.argument, what), what))
        return "".join(parts)

    def _definite(self, major: int) -> bytes | None:
        """The content of the definite-length string of ``major`` at the cursor, with a length
        of at most 0xFFFF, all present (the cursor moves past it); None otherwise, with the
        cursor unchanged, for the general path to read or reject the item."""
        data = self._data
        pos = self._pos
        if pos >= len(data):
            return None
        initial = data[pos]
        if initial >> 5 != major:
            return None
        info = initial & 0x1F
        if info < 24:
            start = pos + 1
            end = start + info
        elif info == 24:
            start = pos + 2
            end = start + data[pos + 1] if start <= len(data) else -1
        elif info == 25:
            start = pos + 3
            end = start + int.from_bytes(data[pos + 1 : start], "big") if start <= len(data) else -1
        else:
            return None
        if end < 0 or end > len(data):
            return None
        self._pos = end
        return data[start:end]

    def _text_item(self, what: str) -> str | None:
        """A definite-length text string at the cursor (see :meth:`_definite`), or None."""
        raw = self._definite(_TEXT)
        return None if raw is None else self._utf8(raw, what)

    def _bytes(self, what: str) -> bytes:
        raw = self._definite(_BYTES)
        if raw is not None:
            return raw
        head = self._head(what)
        if head.major != _BYTES:
            raise WrongType(f"{what} must be a byte string, not {head.kind}")
        return self._string_body(head, what)

    # CMW structure

    def decode(self) -> CMW:
        if not self._data:
            raise MalformedEncoding("empty input")
        cmw = self._cmw(depth=0)
        if self._pos != len(self._data):
            raise TrailingBytes(f"{len(self._data) - self._pos} trailing bytes after the CMW")
        return cmw

    def _cmw(self, depth: int) -> CMW:
        head = self._head("CMW")
        if head.major == _ARRAY:
            return self._record(head.argument)
        if head.major == _MAP:
            return self._collection(head.argument, depth + 1)
        if head.major == _TAG:
            assert head.argument is not None
            return self._tag(head.argument)
        raise WrongType(f"a CBOR CMW is an array, map or tag, not {head.kind}")

    def _record(self, count: int | None) -> CMWRecord:
        if count is not None and count not in (2, 3):
            raise InvalidRecord(f"a record has 2 or 3 entries, not {count}")
        if count is None and self._at_break():
            raise InvalidRecord("a record has 2 or 3 entries, not 0")
        type_ = self._record_type()
        if count is None and self._at_break():
            raise InvalidRecord("a record has 2 or 3 entries, not 1")
        value = self._bytes("record value")
        ind: int | None = None
        if count == 3 or (count is None and not self._at_break()):
            ind = self._indicator()
            if count is None and not self._at_break():
                raise InvalidRecord("a record has 2 or 3 entries, not more")
        return CMWRecord(type_, value, ind)

    def _record_type(self) -> str | int:
        text = self._text_item("record type")
        if text is not None:
            return text
        head = self._head("record type")
        if head.major == _UINT:
            assert head.argument is not None
            return head.argument  # the range is checked by CMWRecord
        if head.major == _TEXT:
            return self._text_body(head, "record type")
        raise WrongType(f"record type must be a uint or text, not {head.kind}")

    def _indicator(self) -> int:
        head = self._head("indicator")
        if head.major != _UINT:
            raise WrongType(f"indicator must be a uint, not {head.kind}")
        assert head.argument is not None
        return head.argument

    def _tag(self, number: int) -> CMWTag:
        cf_from_tn(number)  # reject foreign tags before reading their content
        return CMWTag(number, self._bytes("tag content"))

    def _label(self) -> Label:
        text = self._text_item("collection label")
        if text is not None:
            return text
        head = self._head("collection label")
        if head.major == _UINT:
            assert head.argument is not None
            return head.argument
        if head.major == _NINT:
            assert head.argument is not None
            return -1 - head.argument
        if head.major == _TEXT:
            return self._text_body(head, "collection label")
        raise InvalidLabel(f"a collection label is an int or text, not {head.kind}")

    def _collection(self, count: int | None, depth: int) -> CMWCollection:
        if depth > self._max_depth:
            raise DepthExceeded(f"collections nested deeper than {self._max_depth}")
        items: dict[Label, CMW] = {}
        cmwc_t: str | None = None
        seen_cmwc_t = False
        index = 0
        while (count is None and not self._at_break()) or (count is not None and index < count):
            index += 1
            label = self._label()
            if label == CMWC_T:
                if seen_cmwc_t:
                    raise DuplicateLabel("duplicate __cmwc_t")
                seen_cmwc_t = True
                cmwc_t = self._collection_type()
                continue
            if label in items:
                raise DuplicateLabel(f"duplicate collection label {label!r}")
            try:
                items[label] = self._cmw(depth)
            except CMWError as exc:
                raise in_member(exc, label) from None
        return CMWCollection(items, cmwc_t)

    def _collection_type(self) -> str:
        text = self._text_item("__cmwc_t")
        if text is not None:
            return text
        head = self._head("__cmwc_t")
        if head.major != _TEXT:
            raise WrongType(f"__cmwc_t must be text, not {head.kind}")
        return self._text_body(head, "__cmwc_t")


def decode_cbor(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> CMW:
    """Decode a CBOR CMW (record, tag or collection); raise CMWError on anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WrongType(f"expected bytes, not {type(data).__name__}")
    return _Decoder(bytes(data), max_depth).decode()


# --- encoding --------------------------------------------------------------------------------


# One-byte heads (argument < 24) of every major type, built once.
_SHORT_HEADS: Final = tuple(
    tuple(bytes(((major << 5) | argument,)) for argument in range(24)) for major in range(8)
)


def _head(major: int, argument: int) -> bytes:
    if 0 <= argument < 24:
        return _SHORT_HEADS[major][argument]
    if 0 <= argument < 0x10000:
        if argument < 0x100:
            return bytes(((major << 5) | 24, argument))
        return bytes(((major << 5) | 25, argument >> 8, argument & 0xFF))
    if argument < 24:
        return bytes([(major << 5) | argument])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * size):
            return bytes([(major << 5) | info]) + argument.to_bytes(size, "big")
    raise OverflowError(f"{argument} does not fit a CBOR argument")


def _int(value: int) -> bytes:
    return _head(_UINT, value) if value >= 0 else _head(_NINT, -1 - value)


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _head(_TEXT, len(raw)) + raw


def _bytestring(value: bytes) -> bytes:
    return _head(_BYTES, len(value)) + value


def _label(label: Label) -> bytes:
    return _text(label) if isinstance(label, str) else _int(label)


def _encode(cmw: CMW, deterministic: bool) -> bytes:
    if isinstance(cmw, CMWRecord):
        parts = [_int(cmw.type) if isinstance(cmw.type, int) else _text(cmw.type)]
        parts.append(_bytestring(cmw.value))
        if cmw.ind is not None:
            parts.append(_int(cmw.ind))
        return _head(_ARRAY, len(parts)) + b"".join(parts)
    if isinstance(cmw, CMWTag):
        return _head(_TAG, cmw.number) + _bytestring(cmw.value)
    entries = [] if cmw.cmwc_t is None else [(_text(CMWC_T), _text(cmw.cmwc_t))]
    entries += [(_label(k), _encode(v, deterministic)) for k, v in cmw.items.items()]
    if deterministic:
        entries.sort(key=lambda entry: entry[0])
    return _head(_MAP, len(entries)) + b"".join(k + v for k, v in entries)


def encode_cbor(cmw: CMW, *, deterministic: bool = False) -> bytes:
    """The CBOR serialisation of ``cmw`` (preferred serialisation, definite lengths).

    With ``deterministic=True`` collection keys are sorted bytewise by their encoding
    (RFC 8949 §4.2.1 core deterministic encoding); otherwise ``__cmwc_t`` comes first and the
    items follow in their stored order.
    """
    if not isinstance(cmw, CMWRecord | CMWTag | CMWCollection):
        raise WrongType(f"not a CMW: {type(cmw).__name__}")
    return _encode(cmw, deterministic)
