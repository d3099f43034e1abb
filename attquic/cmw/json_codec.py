"""JSON serialisation of CMW: records ``[type, base64url, ?ind]`` and collections.

The decoder reads strict UTF-8 JSON (RFC 8259) with the standard library parser, hooked so that
duplicate object keys, floats, ``NaN``/``Infinity`` and over-long integers are refused while
parsing. Record values must be canonical unpadded base64url. Every failure is a
:class:`~attquic.errors.CMWError`.

The encoder writes compact JSON (no insignificant whitespace, non-ASCII as UTF-8). Collections
are written with ``__cmwc_t`` first and then the items in their stored order; with
``deterministic=True`` object members are sorted by UTF-16 code units as in RFC 8785 (JCS),
which with this subset of JSON (strings and small integers) makes the output JCS.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from typing import Any, Final

from attquic.cmw.cbor_codec import DEFAULT_MAX_DEPTH
from attquic.cmw.errors import (
    CMWError,
    DepthExceeded,
    DuplicateLabel,
    InvalidBase64,
    InvalidRecord,
    MalformedEncoding,
    NotRepresentable,
    TrailingBytes,
    WrongType,
    in_member,
)
from attquic.cmw.model import CMW, CMWC_T, CMWCollection, CMWRecord, CMWTag, Label

__all__ = ["b64url_decode", "b64url_encode", "decode_json", "encode_json"]

_JSON_WHITESPACE: Final = " \t\n\r"
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
# A CMW integer is an indicator (a few bits); refuse long digit strings before int() sees them.
_MAX_INT_DIGITS: Final = 20


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 4648 §5), as JSON records carry values."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded, canonical base64url; padding or any other deviation is refused."""
    if "=" in text:
        raise InvalidBase64("base64url value must not be padded")
    if _BASE64URL.fullmatch(text) is None:
        raise InvalidBase64("base64url value has characters outside the URL-safe alphabet")
    if len(text) % 4 == 1:
        raise InvalidBase64("base64url value has an impossible length")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64(f"invalid base64url: {exc}") from exc
    if b64url_encode(raw) != text:
        raise InvalidBase64("base64url value has non-zero padding bits (not canonical)")
    return raw


# --- decoding --------------------------------------------------------------------------------


class _Object(tuple[tuple[str, Any], ...]):
    """A parsed JSON object: its members in document order (duplicates already refused)."""

    __slots__ = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateLabel(f"duplicate JSON object key {key!r}")
        seen.add(key)
    return _Object(pairs)


def _refuse_float(text: str) -> Any:
    raise WrongType(f"floating-point number {text[:32]!r} has no place in a CMW")


def _refuse_constant(text: str) -> Any:
    raise WrongType(f"{text} is not valid JSON")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise WrongType("integer too long for a CMW")
    return int(text)


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_float=_refuse_float,
    parse_int=_parse_int,
    parse_constant=_refuse_constant,
)


def _describe(node: object) -> str:
    if isinstance(node, _Object):
        return "an object"
    if isinstance(node, list):
        return "an array"
    if isinstance(node, bool):
        return "a boolean"
    if isinstance(node, str):
        return "a string"
    if isinstance(node, int):
        return "a number"
    return "null"


def _parse(text: str) -> object:
    start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
    try:
        node, end = _DECODER.raw_decode(text, start)
    except CMWError:
        raise
    except RecursionError as exc:
        raise DepthExceeded("JSON nested too deeply") from exc
    except ValueError as exc:  # json.JSONDecodeError and int() limits
        raise MalformedEncoding(f"invalid JSON: {exc}") from exc
    if text[end:].strip(_JSON_WHITESPACE):
        raise TrailingBytes(f"{len(text) - end} trailing characters after the CMW")
    return node


class _Builder:
    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth

    def cmw(self, node: object, depth: int) -> CMW:
        if isinstance(node, list):
            return self.record(node)
        if isinstance(node, _Object):
            return self.collection(node, depth + 1)
        raise WrongType(f"a JSON CMW is an array or an object, not {_describe(node)}")

    @staticmethod
    def record(node: list[object]) -> CMWRecord:
        if len(node) not in (2, 3):
            raise InvalidRecord(f"a record has 2 or 3 entries, not {len(node)}")
        type_, value = node[0], node[1]
        if not isinstance(type_, str):
            raise WrongType(f"a JSON record type is a media-type string, not {_describe(type_)}")
        if not isinstance(value, str):
            raise WrongType(f"a JSON record value is a base64url string, not {_describe(value)}")
        ind: int | None = None
        if len(node) == 3:
            raw_ind = node[2]
            if not isinstance(raw_ind, int) or isinstance(raw_ind, bool):
                raise WrongType(f"indicator must be an integer, not {_describe(raw_ind)}")
            ind = raw_ind
        return CMWRecord(type_, b64url_decode(value), ind)

    def collection(self, node: _Object, depth: int) -> CMWCollection:
        if depth > self._max_depth:
            raise DepthExceeded(f"collections nested deeper than {self._max_depth}")
        cmwc_t: str | None = None
        items: dict[Label, CMW] = {}
        for key, value in node:
            if key == CMWC_T:
                if not isinstance(value, str):
                    raise WrongType(f"__cmwc_t must be a string, not {_describe(value)}")
                cmwc_t = value
            else:
                try:
                    items[key] = self.cmw(value, depth)
                except CMWError as exc:
                    raise in_member(exc, key) from None
        return CMWCollection(items, cmwc_t)


def decode_json(data: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> CMW:
    """Decode a JSON CMW (record or collection); raise CMWError on anything else.

    ``data`` is UTF-8 bytes (or an already decoded ``str``). Whitespace around the value is
    allowed, as RFC 8259 allows it.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedEncoding("JSON CMW is not valid UTF-8") from exc
    elif isinstance(data, str):
        text = data
    else:
        raise WrongType(f"expected bytes or str, not {type(data).__name__}")
    return _Builder(max_depth).cmw(_parse(text), depth=0)


# --- encoding --------------------------------------------------------------------------------


def _jcs_key(member: tuple[str, object]) -> bytes:
    return member[0].encode("utf-16-be")


def _to_json(cmw: CMW, deterministic: bool) -> object:
    if isinstance(cmw, CMWRecord):
        if not isinstance(cmw.type, str):
            raise NotRepresentable(
                f"Content-Format {cmw.type} cannot be a JSON record type (media types only)"
            )
        record: list[object] = [cmw.type, b64url_encode(cmw.value)]
        if cmw.ind is not None:
            record.append(cmw.ind)
        return record
    if isinstance(cmw, CMWTag):
        raise NotRepresentable("the CBOR tag form has no JSON serialisation")
    members: list[tuple[str, object]] = [] if cmw.cmwc_t is None else [(CMWC_T, cmw.cmwc_t)]
    for label, item in cmw.items.items():
        if not isinstance(label, str):
            raise NotRepresentable(f"integer label {label} cannot be a JSON object key")
        members.append((label, _to_json(item, deterministic)))
    if deterministic:
        members.sort(key=_jcs_key)
    return dict(members)


def _dump(node: object) -> Iterable[str]:
    return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).iterencode(node)


def encode_json(cmw: CMW, *, deterministic: bool = False) -> bytes:
    """The compact JSON serialisation of ``cmw`` as UTF-8 bytes.

    Raises :class:`~attquic.cmw.errors.NotRepresentable` for what JSON cannot carry: tags,
    Content-Format record types and integer labels.
    """
    if not isinstance(cmw, CMWRecord | CMWTag | CMWCollection):
        raise WrongType(f"not a CMW: {type(cmw).__name__}")
    return "".join(_dump(_to_json(cmw, deterministic))).encode("utf-8")
