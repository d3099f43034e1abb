"""The CMW model and codecs: one test per validation check, encoders, helpers."""

from __future__ import annotations

import json
from typing import Literal

import cbor2
import pytest

from attquic import cmw, profile
from attquic.errors import CMWError, DecodeError

TDX = profile.TDX_QUOTE_MEDIA_TYPE
RECORD = cmw.CMWRecord("application/vnd.a", b"a")


def cbor(value: object) -> bytes:
    return cbor2.dumps(value)


# --- model -------------------------------------------------------------------------------------


def test_errors_are_cmw_errors() -> None:
    assert issubclass(cmw.CMWError, DecodeError)
    for name in cmw.errors.__all__:
        assert issubclass(getattr(cmw.errors, name), CMWError)


def test_record_properties() -> None:
    evidence = cmw.CMWRecord(TDX, b"quote", profile.IND_EVIDENCE)
    assert evidence.is_evidence and not evidence.is_attestation_results
    assert evidence.media_type == TDX and evidence.content_format is None
    assert evidence.indicator is cmw.Indicator.EVIDENCE
    result = cmw.CMWRecord(profile.EAR_JWT_MEDIA_TYPE, b"jwt", 8)
    assert result.is_attestation_results and not result.is_evidence
    both = cmw.CMWRecord(30001, b"", 3)
    assert both.is_reference_values and both.is_endorsements and not both.is_appraisal_policy
    assert both.content_format == 30001 and both.media_type is None
    assert cmw.CMWRecord(1, b"", 16).is_appraisal_policy
    assert cmw.CMWRecord(1, b"").indicator == cmw.Indicator(0)


def test_record_copies_bytes_like_values() -> None:
    assert cmw.CMWRecord("a/b", bytearray(b"xy")).value == b"xy"  # type: ignore[arg-type]
    assert cmw.CMWTag(cmw.tn(1), memoryview(b"xy")).value == b"xy"  # type: ignore[arg-type]


@pytest.mark.parametrize("ind", [0, 32, 64, -1, 2**32])
def test_indicator_out_of_range(ind: int) -> None:
    with pytest.raises(cmw.InvalidIndicator):
        cmw.CMWRecord("a/b", b"", ind)
    # a negative CBOR integer is the wrong major type, not an out-of-range uint
    with pytest.raises(cmw.InvalidIndicator if ind >= 0 else cmw.WrongType):
        cmw.decode(cbor(["a/b", b"", ind]))


@pytest.mark.parametrize("ind", [True, "4", 4.0])
def test_indicator_wrong_type(ind: object) -> None:
    with pytest.raises(cmw.WrongType):
        cmw.CMWRecord("a/b", b"", ind)  # type: ignore[arg-type]


def test_json_indicator_wrong_type() -> None:
    for ind in ("true", '"4"', "4.0", "4e0", "null"):
        with pytest.raises(cmw.WrongType):
            cmw.decode(f'["a/b", "", {ind}]'.encode())


@pytest.mark.parametrize("cf", [-1, 65536, 2**64 - 1])
def test_content_format_out_of_range(cf: int) -> None:
    with pytest.raises(cmw.InvalidContentFormat):
        cmw.CMWRecord(cf, b"")


def test_content_format_limits() -> None:
    assert cmw.decode(cbor([65535, b""])) == cmw.CMWRecord(65535, b"")
    assert cmw.decode(cbor([0, b""])) == cmw.CMWRecord(0, b"")


@pytest.mark.parametrize(
    "media_type",
    [
        "",
        "application",
        "application/",
        "/json",
        "a b/c",
        "a/b;x",
        'a/b; x="unterminated',
        "appl\u00e9/x",
        "a/b\n",
        "a/b; x=y z",
    ],
)
def test_invalid_media_type(media_type: str) -> None:
    assert not cmw.is_valid_media_type(media_type)
    with pytest.raises(cmw.InvalidMediaType):
        cmw.CMWRecord(media_type, b"")
    with pytest.raises(cmw.InvalidMediaType):
        cmw.decode(cbor([media_type, b""]))


@pytest.mark.parametrize(
    "media_type",
    [
        TDX,
        profile.EAR_JWT_MEDIA_TYPE,
        "monad.type/sample",
        "application/eat+cwt",
        'a/b; x="q\\"uoted"',
        "a/b;",
        "a/b ; x=y",
    ],
)
def test_valid_media_type(media_type: str) -> None:
    assert cmw.is_valid_media_type(media_type)


def test_media_type_check_stays_linear_on_hostile_input() -> None:
    # Ambiguous whitespace around ';' made a naive regex backtrack exponentially.
    for hostile in ("a/b" + " ;" * 30000 + "@", "a/b" + " ; " * 30000 + "@", "a/b; " + "x" * 60000):
        assert not cmw.is_valid_media_type(hostile)
    assert not cmw.is_valid_collection_type("1" + ".1" * 30000 + ".")


def test_record_type_wrong_type() -> None:
    with pytest.raises(cmw.WrongType):
        cmw.CMWRecord(b"a/b", b"")  # type: ignore[arg-type]
    with pytest.raises(cmw.WrongType):
        cmw.CMWRecord(True, b"")
    with pytest.raises(cmw.WrongType):
        cmw.decode(cbor([-1, b""]))
    with pytest.raises(cmw.WrongType):
        cmw.decode(cbor([b"a/b", b""]))


def test_record_value_wrong_type() -> None:
    with pytest.raises(cmw.WrongType):
        cmw.CMWRecord("a/b", "text")  # type: ignore[arg-type]
    with pytest.raises(cmw.WrongType):
        cmw.decode(cbor(["a/b", "text"]))
    with pytest.raises(cmw.WrongType):
        cmw.decode(b'["a/b", 1]')


@pytest.mark.parametrize("count", [0, 1, 4])
def test_record_arity(count: int) -> None:
    items = ["a/b", b"", 4, 4][:count]
    with pytest.raises(cmw.InvalidRecord):
        cmw.decode(cbor(items))
    with pytest.raises(cmw.InvalidRecord):
        cmw.decode(json.dumps(["a/b", "", 4, 4][:count]).encode())


def test_indefinite_length_record_and_strings() -> None:
    # [_ "a/" "b" as (_ h'01', h'02'), 4] in indefinite forms
    data = bytes.fromhex("9f7f62612f6162ff5f41014102ff04ff")
    assert cmw.decode(data) == cmw.CMWRecord("a/b", b"\x01\x02", 4)
    assert cmw.encode_cbor(cmw.decode(data)) == bytes.fromhex("8363612f6242010204")
    assert cmw.decode(bytes.fromhex("9f63612f6240ff")) == cmw.CMWRecord("a/b", b"")
    for bad in ("9fff", "9f63612f62ff", "9f63612f624004 04ff", "9f63612f6240"):
        with pytest.raises(cmw.CMWError):
            cmw.decode(bytes.fromhex(bad.replace(" ", "")))


def test_indefinite_string_with_bad_chunk() -> None:
    with pytest.raises(cmw.MalformedEncoding):
        cmw.decode(bytes.fromhex("827f4161ff40"))  # byte chunk inside a text string
    with pytest.raises(cmw.MalformedEncoding):
        cmw.decode(bytes.fromhex("827f7f6161ffff40"))  # nested indefinite chunk


def test_non_preferred_integers_are_accepted() -> None:
    assert cmw.decode(bytes.fromhex("831800401b0000000000000004")) == cmw.CMWRecord(0, b"", 4)


def test_reserved_initial_bytes() -> None:
    for bad in ("821c40", "82005c", "82ff40"):
        with pytest.raises(cmw.MalformedEncoding):
            cmw.decode(bytes.fromhex(bad))


def test_invalid_utf8_text() -> None:
    with pytest.raises(cmw.MalformedEncoding):
        cmw.decode(bytes.fromhex("8262ff6140"))
    with pytest.raises(cmw.MalformedEncoding):
        cmw.decode(b'["a/b", "\xff"]')


# --- tags --------------------------------------------------------------------------------------


def test_tag_number_range() -> None:
    assert cmw.CMWTag(cmw.TN_FIRST, b"").content_format == 0
    assert cmw.CMWTag(cmw.TN_LAST, b"").content_format == cmw.MAX_TN_CONTENT_FORMAT
    for number in (cmw.TN_FIRST - 1, cmw.TN_LAST + 1, cmw.TN_FIRST + 255, 18, -1):
        with pytest.raises(cmw.InvalidTagNumber):
            cmw.CMWTag(number, b"")
        if number >= 0:
            with pytest.raises(cmw.InvalidTagNumber):
                cmw.decode(cbor(cbor2.CBORTag(number, b"")))


def test_tn_is_a_bijection_on_its_domain() -> None:
    numbers = [cmw.tn(cf) for cf in range(cmw.MAX_TN_CONTENT_FORMAT + 1)]
    assert len(set(numbers)) == len(numbers)
    assert numbers[0] == cmw.TN_FIRST and numbers[-1] == cmw.TN_LAST
    assert all(cmw.cf_from_tn(n) == cf for cf, n in enumerate(numbers))
    for cf in (-1, 65025, 65535, True):
        with pytest.raises(cmw.InvalidContentFormat):
            cmw.tn(cf)


def test_tag_content_must_be_bytes() -> None:
    with pytest.raises(cmw.WrongType):
        cmw.decode(cbor(cbor2.CBORTag(cmw.tn(1), "text")))
    with pytest.raises(cmw.WrongType):
        cmw.CMWTag(cmw.tn(1), "text")  # type: ignore[arg-type]


def test_tag_not_representable_in_json() -> None:
    with pytest.raises(cmw.NotRepresentable):
        cmw.encode_json(cmw.CMWTag(cmw.tn(1), b""))
    with pytest.raises(cmw.NotRepresentable):
        cmw.encode_json(cmw.CMWRecord(1, b""))
    with pytest.raises(cmw.NotRepresentable):
        cmw.encode_json(cmw.CMWCollection({1: RECORD}))


# --- collections -------------------------------------------------------------------------------


def test_empty_collection() -> None:
    with pytest.raises(cmw.EmptyCollection):
        cmw.CMWCollection({})
    with pytest.raises(cmw.EmptyCollection):
        cmw.decode(cbor({}))
    with pytest.raises(cmw.EmptyCollection):
        cmw.decode(b"{}")
    with pytest.raises(cmw.EmptyCollection):
        cmw.decode(cbor({"__cmwc_t": "1.2.3"}))


def test_duplicate_keys() -> None:
    record = bytes.fromhex("8263612f6240")
    dup = bytes.fromhex("a201") + record + bytes.fromhex("01") + record
    with pytest.raises(cmw.DuplicateLabel):
        cmw.decode(dup)
    # the same key in a non-preferred encoding is still the same key
    with pytest.raises(cmw.DuplicateLabel):
        cmw.decode(bytes.fromhex("a201") + record + bytes.fromhex("1801") + record)
    cmwc_t = bytes.fromhex("685f5f636d77635f74") + bytes.fromhex("63312e32")
    with pytest.raises(cmw.DuplicateLabel):
        cmw.decode(bytes.fromhex("a3") + cmwc_t + cmwc_t + bytes.fromhex("01") + record)
    with pytest.raises(cmw.DuplicateLabel):
        cmw.decode(b'{"a": ["a/b", ""], "a": ["a/b", "YQ"]}')
    with pytest.raises(cmw.DuplicateLabel):
        cmw.decode(b'{"__cmwc_t": "1.2", "__cmwc_t": "1.3", "a": ["a/b", ""]}')
    # int 1 and text "1" are different labels
    assert len(cmw.decode(cbor({1: ["a/b", b""], "1": ["a/b", b""]}))) == 2  # type: ignore[arg-type]


def test_labels() -> None:
    record = ["a/b", b""]
    decoded = cmw.decode(cbor({-5: record, 2**64 - 1: record, "x": record}))
    assert isinstance(decoded, cmw.CMWCollection)
    assert set(decoded) == {-5, 2**64 - 1, "x"}
    for bad in (b"\x01", 1.5, None, True):
        with pytest.raises(cmw.InvalidLabel):
            cmw.decode(cbor({bad: record}))
    for text in ("", "  ", "\t"):
        with pytest.raises(cmw.InvalidLabel):
            cmw.decode(cbor({text: record}))
        with pytest.raises(cmw.InvalidLabel):
            cmw.decode(json.dumps({text: ["a/b", ""]}).encode())
    with pytest.raises(cmw.InvalidLabel):
        cmw.CMWCollection({"__cmwc_t": RECORD})
    with pytest.raises(cmw.InvalidLabel):
        cmw.CMWCollection({2**64: RECORD})
    with pytest.raises(cmw.InvalidLabel):
        cmw.decode(b'{"\\ud800": ["a/b", ""]}')  # lone surrogate


def test_collection_type_must_be_text() -> None:
    with pytest.raises(cmw.WrongType):
        cmw.decode(cbor({"__cmwc_t": 5, 1: ["a/b", b""]}))
    with pytest.raises(cmw.WrongType):
        cmw.decode(b'{"__cmwc_t": 5, "a": ["a/b", ""]}')
    with pytest.raises(cmw.InvalidCollectionType):
        cmw.decode(cbor({"__cmwc_t": "not a uri", 1: ["a/b", b""]}))
    for good in ("1.3.6.1.4.1", "0", "https://example.com/x#frag", "urn:x:%41"):
        assert cmw.is_valid_collection_type(good), good
    for bad in ("3.1", "1.02", "1.", "http://x/%zz", "x:a#b#c", "1:x"):
        assert not cmw.is_valid_collection_type(bad), bad


def test_collection_item_must_be_cmw() -> None:
    with pytest.raises(cmw.WrongType):
        cmw.CMWCollection({"a": b"not a cmw"})  # type: ignore[dict-item]
    with pytest.raises(cmw.WrongType):
        cmw.decode(cbor({"a": b"bytes"}))
    with pytest.raises(cmw.WrongType):
        cmw.decode(b'{"a": "string"}')


def test_collection_is_immutable_and_order_insensitive() -> None:
    source: dict[cmw.Label, cmw.CMW] = {"a": RECORD, 1: cmw.CMWTag(cmw.tn(5), b"x")}
    collection = cmw.CMWCollection(source, "1.2.3")
    source["b"] = RECORD
    assert "b" not in collection.items
    with pytest.raises(TypeError):
        collection.items["c"] = RECORD  # type: ignore[index]
    with pytest.raises(AttributeError):
        collection.cmwc_t = None  # type: ignore[misc]
    reordered = cmw.CMWCollection({1: cmw.CMWTag(cmw.tn(5), b"x"), "a": RECORD}, "1.2.3")
    assert reordered == collection and hash(reordered) == hash(collection)
    assert reordered != cmw.CMWCollection(dict(reordered.items), "1.2.4")
    assert list(collection) == ["a", 1] and len(collection) == 2 and collection["a"] == RECORD
    assert {collection, reordered} == {collection}


def test_depth_limit() -> None:
    cbor_value: object = ["a/b", b""]
    json_value: object = ["a/b", ""]
    for _ in range(5):
        cbor_value, json_value = {"x": cbor_value}, {"x": json_value}
    for data in (cbor(cbor_value), json.dumps(json_value).encode()):
        assert isinstance(cmw.decode(data, max_depth=5), cmw.CMWCollection)
        with pytest.raises(cmw.DepthExceeded):
            cmw.decode(data, max_depth=4)


def test_very_deep_input_fails_cleanly() -> None:
    with pytest.raises(cmw.CMWError):
        cmw.decode(b"[" * 100_000)
    with pytest.raises(cmw.CMWError):
        cmw.decode(b'{"a":' * 100_000)
    with pytest.raises(cmw.DepthExceeded):
        cmw.decode(b"\xa1\x01" * 100_000)


def test_huge_declared_lengths_fail_fast() -> None:
    for head in ("5bffffffffffffffff", "9bffffffffffffffff", "bbffffffffffffffff"):
        with pytest.raises(cmw.CMWError):
            cmw.decode(
                bytes.fromhex(("82 00 " + head).replace(" ", "") if head[0] == "5" else head)
            )


# --- framing -----------------------------------------------------------------------------------


def test_trailing_bytes() -> None:
    good = cmw.encode_cbor(RECORD)
    with pytest.raises(cmw.TrailingBytes):
        cmw.decode(good + b"\x00")
    with pytest.raises(cmw.TrailingBytes):
        cmw.decode(b'["a/b", "YQ"] x')
    with pytest.raises(cmw.TrailingBytes):
        cmw.decode(b'["a/b", "YQ"]["a/b", "YQ"]')
    assert cmw.decode(b'["application/vnd.a", "YQ"] \n') == RECORD


@pytest.mark.parametrize("value", ["YQ==", "YQ=", "Y", "YR", "a+b/", "YQ\n", "Y Q"])
def test_base64url_strictness(value: str) -> None:
    with pytest.raises(cmw.InvalidBase64):
        cmw.b64url_decode(value)
    with pytest.raises(cmw.InvalidBase64):
        cmw.decode(json.dumps(["a/b", value]).encode())


def test_base64url_round_trip() -> None:
    for size in range(8):
        data = bytes(range(250, 250 - size, -1))
        assert cmw.b64url_decode(cmw.b64url_encode(data)) == data
    assert cmw.decode(b'["a/b", ""]') == cmw.CMWRecord("a/b", b"")


def test_json_oddities() -> None:
    for text in (b"[NaN]", b'["a/b", "", Infinity]', b'["a/b", "", 1' + b"0" * 5000 + b"]"):
        with pytest.raises(cmw.CMWError):
            cmw.decode(text)
    with pytest.raises(cmw.MalformedEncoding):
        cmw.decode_json(b"\xff\xfe[")
    with pytest.raises(cmw.WrongType):
        cmw.decode_json(b" 5 ")
    assert cmw.decode_json(' ["application/vnd.a", "YQ"]') == RECORD


def test_sniff() -> None:
    assert cmw.sniff(b"\x82") is cmw.Form.CBOR_RECORD
    assert cmw.sniff(b"\x9f") is cmw.Form.CBOR_RECORD
    assert cmw.sniff(b"\xa1") is cmw.Form.CBOR_COLLECTION
    assert cmw.sniff(b"\xbf") is cmw.Form.CBOR_COLLECTION
    assert cmw.sniff(b"\xda") is cmw.Form.CBOR_TAG
    assert cmw.sniff(b"[") is cmw.Form.JSON_RECORD
    assert cmw.sniff(b"{") is cmw.Form.JSON_COLLECTION
    for bad in (b"", b" [", b"\x00", b"\xdc", b'"'):
        with pytest.raises(cmw.MalformedEncoding):
            cmw.sniff(bad)
    with pytest.raises(cmw.WrongType):
        cmw.decode("[]")  # type: ignore[arg-type]


# --- encoders ----------------------------------------------------------------------------------


def test_cbor_encoding_orders() -> None:
    collection = cmw.CMWCollection(
        {"string": cmw.CMWRecord(0, b"\xff"), 1024: cmw.CMWRecord(1, b"")}
    )
    stored = cmw.encode_cbor(collection)
    assert stored.startswith(bytes.fromhex("a266737472696e67"))
    deterministic = cmw.encode_cbor(collection, deterministic=True)
    assert deterministic.startswith(bytes.fromhex("a2190400"))
    assert cbor2.loads(deterministic) == cbor2.loads(stored)
    assert cmw.decode(deterministic) == cmw.decode(stored) == collection


def test_cmwc_t_is_written_first_or_sorted() -> None:
    collection = cmw.CMWCollection({"A": RECORD, "b": RECORD}, "1.2")
    assert (
        cmw.encode_json(collection) == b'{"__cmwc_t":"1.2","A":["application/vnd.a","YQ"],'
        b'"b":["application/vnd.a","YQ"]}'
    )
    assert cmw.encode_json(collection, deterministic=True).startswith(b'{"A":')
    assert next(iter(cbor2.loads(cmw.encode_cbor(collection)))) == "__cmwc_t"


def test_json_encoding_keeps_utf8() -> None:
    collection = cmw.CMWCollection({"é\u2028": RECORD})
    encoded = cmw.encode_json(collection)
    assert "é".encode() in encoded
    assert cmw.decode(encoded) == collection


def test_iter_leaves() -> None:
    inner = cmw.CMWCollection({"q": cmw.CMWRecord(TDX, b"q", 4)})
    tree = cmw.CMWCollection({"a": RECORD, 2: inner})
    assert list(cmw.iter_leaves(tree)) == [(("a",), RECORD), ((2, "q"), inner["q"])]
    assert list(cmw.iter_leaves(RECORD)) == [((), RECORD)]


def test_encoders_refuse_non_cmw() -> None:
    with pytest.raises(cmw.WrongType):
        cmw.encode_cbor("x")  # type: ignore[arg-type]
    with pytest.raises(cmw.WrongType):
        cmw.encode_json(b"x")  # type: ignore[arg-type]


# --- X.509 -------------------------------------------------------------------------------------


def test_x509_round_trip_both_forms() -> None:
    collection = cmw.CMWCollection({"a": RECORD, "b": cmw.CMWRecord(TDX, b"\x00" * 300, 4)})
    forms: tuple[Literal["cbor", "json"], ...] = ("cbor", "json")
    for form in forms:
        value = cmw.to_x509_extension_value(collection, form=form)
        assert value[0] == (0x04 if form == "cbor" else 0x0C)
        assert value[1] == 0x82  # long-form DER length
        assert cmw.from_x509_extension(value) == collection
        extension = cmw.to_x509_extension(collection, form=form)
        assert extension.oid == cmw.ID_PE_CMW
        assert cmw.from_x509_extension(extension) == collection


def test_x509_malformed_values() -> None:
    json_in_octets = b"\x04\x02[]"
    for bad, error in (
        (b"", cmw.MalformedEncoding),
        (b"\x04", cmw.MalformedEncoding),
        (b"\x04\x05\x82\x61", cmw.MalformedEncoding),
        (b"\x04\x81\x02\x82\x00", cmw.MalformedEncoding),  # non-minimal length
        (b"\x04\x80", cmw.MalformedEncoding),  # indefinite
        (cmw.to_x509_extension_value(RECORD, form="cbor") + b"\x00", cmw.TrailingBytes),
        (b"\x13\x02[]", cmw.WrongType),  # PrintableString
        (json_in_octets, cmw.MalformedEncoding),  # CBOR choice holding JSON
    ):
        with pytest.raises(error):
            cmw.from_x509_extension(bad)
    with pytest.raises(cmw.WrongType):
        cmw.from_x509_extension(42)  # type: ignore[arg-type]
    with pytest.raises(cmw.WrongType):
        cmw.to_x509_extension_value(RECORD, form="xml")  # type: ignore[arg-type]


def test_x509_certificate_without_extension() -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(when)
        .not_valid_after(when + datetime.timedelta(days=1))
    )
    bare = builder.sign(key, hashes.SHA256())
    with pytest.raises(cmw.MissingExtension):
        cmw.from_x509_extension(bare)
    evidence = cmw.CMWRecord(TDX, b"quote", 4)
    with_cmw = builder.add_extension(
        cmw.to_x509_extension(evidence, form="cbor"), critical=False
    ).sign(key, hashes.SHA256())
    assert cmw.from_x509_extension(with_cmw) == evidence
    basic = x509.Extension(x509.BasicConstraints.oid, False, x509.BasicConstraints(False, None))
    with pytest.raises(cmw.MissingExtension):
        cmw.from_x509_extension(basic)
