"""Property tests: round trips of generated CMW trees; decoders never raise non-CMW errors."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import cbor2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attquic import cmw

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TOKEN = st.from_regex(r"[a-z][a-z0-9.+\-]{0,12}", fullmatch=True)
_PARAM_VALUE = st.one_of(_TOKEN, st.from_regex(r'"[a-zA-Z0-9 :/,.\\"]{0,16}"', fullmatch=True))
_MEDIA_TYPES = st.builds(
    lambda t, s, params: f"{t}/{s}" + "".join(f"; {k}={v}" for k, v in params),
    _TOKEN,
    _TOKEN,
    st.lists(st.tuples(_TOKEN, _PARAM_VALUE), max_size=2),
).filter(cmw.is_valid_media_type)
_INDICATORS = st.one_of(st.none(), st.integers(1, 31))
_CMWC_T = st.one_of(
    st.none(),
    st.sampled_from(["1.2.3.4", "tag:example.com,2024:x", "urn:ietf:rfc:rfc9999", "https://a/b"]),
)
_TEXT_LABELS = st.text(min_size=1, max_size=8).filter(cmw.is_valid_label)
_LABELS = st.one_of(_TEXT_LABELS, st.integers(-(2**64), 2**64 - 1))


def _records(json_only: bool) -> st.SearchStrategy[cmw.CMWRecord]:
    types = _MEDIA_TYPES if json_only else st.one_of(_MEDIA_TYPES, st.integers(0, 65535))
    return st.builds(cmw.CMWRecord, types, st.binary(max_size=40), _INDICATORS)


_TAGS = st.builds(
    cmw.CMWTag.from_content_format,
    st.integers(0, cmw.MAX_TN_CONTENT_FORMAT),
    st.binary(max_size=20),
)


def _trees(json_only: bool) -> st.SearchStrategy[cmw.CMW]:
    leaves: st.SearchStrategy[cmw.CMW] = (
        _records(True) if json_only else st.one_of(_records(False), _TAGS)
    )
    labels = _TEXT_LABELS if json_only else _LABELS
    return st.recursive(
        leaves,
        lambda children: st.builds(
            cmw.CMWCollection, st.dictionaries(labels, children, min_size=1, max_size=4), _CMWC_T
        ),
        max_leaves=12,
    )


@SETTINGS
@given(_trees(json_only=False), st.booleans())
def test_cbor_round_trip(tree: cmw.CMW, deterministic: bool) -> None:
    encoded = cmw.encode_cbor(tree, deterministic=deterministic)
    decoded = cmw.decode(encoded)
    assert decoded == tree
    assert cmw.decode_cbor(encoded) == tree
    # stored order is kept, so re-encoding is stable
    assert cmw.encode_cbor(decoded, deterministic=deterministic) == encoded
    # the generic CBOR view agrees (no encoder quirks a standard decoder would read differently)
    assert cbor2.dumps(cbor2.loads(encoded), canonical=False) == encoded


@SETTINGS
@given(_trees(json_only=True), st.booleans())
def test_json_round_trip(tree: cmw.CMW, deterministic: bool) -> None:
    encoded = cmw.encode_json(tree, deterministic=deterministic)
    assert cmw.decode(encoded) == tree
    assert cmw.decode_json(encoded.decode("utf-8")) == tree
    assert cmw.encode_json(cmw.decode(encoded), deterministic=deterministic) == encoded
    # and the JSON tree is also a CBOR tree
    assert cmw.decode(cmw.encode_cbor(tree)) == tree


@SETTINGS
@given(_trees(json_only=True))
def test_deterministic_encoding_ignores_item_order(tree: cmw.CMW) -> None:
    if not isinstance(tree, cmw.CMWCollection):
        return
    reversed_tree = cmw.CMWCollection(dict(reversed(list(tree.items.items()))), tree.cmwc_t)
    assert reversed_tree == tree
    for encode in (cmw.encode_cbor, cmw.encode_json):
        assert encode(reversed_tree, deterministic=True) == encode(tree, deterministic=True)


def _decode_only_cmw_errors(data: bytes) -> None:
    try:
        result = cmw.decode(data)
    except cmw.CMWError:
        return
    assert isinstance(result, cmw.CMWRecord | cmw.CMWTag | cmw.CMWCollection)


@SETTINGS
@given(st.binary(max_size=200))
@example(b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff")
@example(b"\x82\x00\x5b\xff\xff\xff\xff\xff\xff\xff\xff")
@example(b"\xda\x63\x74\x01\x01\x5f\x41")
@example(b"[" * 5000)
def test_arbitrary_bytes_raise_only_cmw_errors(data: bytes) -> None:
    _decode_only_cmw_errors(data)
    for decoder in (cmw.decode_cbor, cmw.decode_json, cmw.from_x509_extension):
        with contextlib.suppress(cmw.CMWError):
            decoder(data)


@SETTINGS
@given(st.binary(min_size=1, max_size=120).map(lambda b: bytes([0x80 | (b[0] & 0x5F)]) + b[1:]))
def test_arbitrary_bytes_with_cbor_starts(data: bytes) -> None:
    _decode_only_cmw_errors(data)


_CBOR_VALUES = st.recursive(
    st.one_of(
        st.integers(-(2**70), 2**70),
        st.binary(max_size=8),
        st.text(max_size=8),
        st.floats(),
        st.booleans(),
        st.none(),
        st.sampled_from(["application/x", "__cmwc_t", "1.2.3"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.integers(-5, 5), st.text(max_size=4)), children, max_size=4),
        st.builds(cbor2.CBORTag, st.sampled_from([cmw.TN_FIRST, cmw.TN_LAST, 18, 1]), children),
    ),
    max_leaves=16,
)


@SETTINGS
@given(_CBOR_VALUES)
def test_arbitrary_cbor_raises_only_cmw_errors(value: Any) -> None:
    _decode_only_cmw_errors(cbor2.dumps(value))


_JSON_VALUES = st.recursive(
    st.one_of(
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
        st.booleans(),
        st.none(),
        st.sampled_from(["application/x", "__cmwc_t", "YQ", "1.2.3"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=16,
)


@SETTINGS
@given(_JSON_VALUES, st.booleans())
def test_arbitrary_json_raises_only_cmw_errors(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    _decode_only_cmw_errors(text.encode("utf-8"))
    with contextlib.suppress(cmw.CMWError):
        cmw.decode_json(text)


@SETTINGS
@given(st.text(max_size=60))
def test_arbitrary_json_text_raises_only_cmw_errors(text: str) -> None:
    _decode_only_cmw_errors(("[" + text).encode("utf-8", "surrogatepass"))
    _decode_only_cmw_errors(("{" + text).encode("utf-8", "surrogatepass"))


@SETTINGS
@given(_trees(json_only=False), st.data())
def test_mutated_encodings_raise_only_cmw_errors(tree: cmw.CMW, data: st.DataObject) -> None:
    encoded = bytearray(cmw.encode_cbor(tree))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    _decode_only_cmw_errors(bytes(encoded))
    _decode_only_cmw_errors(bytes(encoded[:cut]))
