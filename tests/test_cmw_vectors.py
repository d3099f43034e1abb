"""Every CMW vector in tests/data/vectors/cmw: Veraison's test data, inline vectors, the draft's
examples, the id-pe-cmw certificates and the signed-cbor-cmw payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import cbor2
import pytest
from cryptography import x509
from data_paths import VECTORS

from attquic import cmw

_CMW_DIR = VECTORS / "cmw"


def _load(name: str) -> Any:
    return json.loads((_CMW_DIR / name).read_text())


_INLINE: list[dict[str, Any]] = _load("inline.json")
_SIGNED: dict[str, Any] = _load("signed-cbor-cmw.json")


def _entries(*forms: str, valid: bool | None = None) -> list[Any]:
    chosen = [
        entry
        for entry in _INLINE
        if entry.get("form") in forms and (valid is None or entry.get("valid") is valid)
    ]
    return [pytest.param(entry, id=entry["name"]) for entry in chosen]


def _x509_entries() -> list[Any]:
    return [pytest.param(e, id=e["name"]) for e in _INLINE if "extn_value_hex" in e]


def _raw(entry: dict[str, Any]) -> bytes:
    if "bytes_hex" in entry:
        return bytes.fromhex(entry["bytes_hex"])
    return str(entry["text"]).encode("utf-8")


def normalise(value: cmw.CMW) -> dict[str, Any]:
    """The vector README's normalised tree for a decoded CMW (items in stored order)."""
    if isinstance(value, cmw.CMWRecord):
        return {
            "kind": "record",
            "type": value.type,
            "value_hex": value.value.hex(),
            "ind": value.ind,
        }
    if isinstance(value, cmw.CMWTag):
        return {
            "kind": "tag",
            "tag_number": value.number,
            "cf": value.content_format,
            "value_hex": value.value.hex(),
        }
    return {
        "kind": "collection",
        "cmwc_t": value.cmwc_t,
        "items": [{"label": k, "cmw": normalise(v)} for k, v in value.items.items()],
    }


@pytest.fixture
def cmw_dir(vectors_dir: Path) -> Path:
    return vectors_dir / "cmw"


def test_vectors_present(cmw_dir: Path) -> None:
    assert (cmw_dir / "inline.json").is_file()
    assert len(_INLINE) > 80
    assert _SIGNED["vectors"]


# --- inline.json: valid vectors ----------------------------------------------------------------


@pytest.mark.parametrize("entry", _entries("cbor", "json", valid=True))
def test_valid_vector_decodes_to_expected_tree(cmw_dir: Path, entry: dict[str, Any]) -> None:
    decoded = cmw.decode(_raw(entry))
    assert normalise(decoded) == entry["expected"]
    decoder = cmw.decode_cbor if entry["form"] == "cbor" else cmw.decode_json
    assert decoder(_raw(entry)) == decoded
    assert cmw.sniff(_raw(entry)).is_cbor is (entry["form"] == "cbor")


@pytest.mark.parametrize("entry", _entries("cbor", valid=True))
def test_valid_cbor_vector_reencodes_to_same_bytes(cmw_dir: Path, entry: dict[str, Any]) -> None:
    # Every CBOR vector uses preferred serialisation with __cmwc_t first, so the stored-order
    # encoder reproduces it exactly (including rust-cmw's mixed-key collection).
    assert cmw.encode_cbor(cmw.decode(_raw(entry))) == _raw(entry)


@pytest.mark.parametrize("entry", _entries("json", valid=True))
def test_valid_json_vector_reencodes(cmw_dir: Path, entry: dict[str, Any]) -> None:
    decoded = cmw.decode(_raw(entry))
    encoded = cmw.encode_json(decoded)
    assert cmw.decode(encoded) == decoded
    # Same JSON value; byte-identical where the vector is already compact output.
    assert json.loads(encoded) == json.loads(entry["text"])
    compact = json.dumps(json.loads(entry["text"]), separators=(",", ":"), ensure_ascii=False)
    if compact == entry["text"]:
        assert encoded.decode() == entry["text"]


def _by_name(name: str) -> dict[str, Any]:
    for entry in _INLINE:
        if entry["name"] == name:
            return entry
    raise KeyError(name)


def test_go_reserialisation_is_reproduced(cmw_dir: Path) -> None:
    entry = _by_name("example_roundtrip_JSON_collection_input")
    decoded = cmw.decode(_raw(entry))
    assert cmw.encode_json(decoded).decode() == entry["reserialized_text"]
    assert cmw.encode_json(decoded, deterministic=True).decode() == entry["reserialized_text"]


def test_byte_exact_encoder_outputs(cmw_dir: Path) -> None:
    # Build the objects the source tests marshal and compare with their expected bytes.
    expected: dict[str, cmw.CMW] = {
        "marshal_CBOR_record_cf10000_ind19": cmw.CMWRecord(10000, bytes.fromhex("deadbeef"), 19),
        "marshal_CBOR_record_cf10000_no_ind": cmw.CMWRecord(10000, bytes.fromhex("deadbeef")),
        "marshal_CBOR_record_cf10001_ind8": cmw.CMWRecord(10001, bytes.fromhex("deadbeef"), 8),
        "marshal_CBOR_tag_cf50000": cmw.CMWTag.from_content_format(50000, b"\xde\xad\xbe\xef"),
        "marshal_CBOR_tag_cf50001": cmw.CMWTag.from_content_format(50001, b"\xde\xad\xbe\xef"),
        "marshal_CBOR_tag_cf50002": cmw.CMWTag.from_content_format(50002, b"\xde\xad\xbe\xef"),
        "testdata_collection_cbor_ok_2": cmw.CMWCollection(
            {1: cmw.CMWRecord("application/vnd.1", bytes.fromhex("deadbeef"))}
        ),
    }
    for name, value in expected.items():
        assert cmw.encode_cbor(value) == _raw(_by_name(name)), name


# --- inline.json: invalid vectors --------------------------------------------------------------

_EXPECTED_ERROR: dict[str, type[cmw.CMWError]] = {
    "sniff_JSON_record_CF_integer_type": cmw.WrongType,
    "json_record_empty": cmw.InvalidRecord,
    "json_record_one_entry_int": cmw.InvalidRecord,
    "json_record_one_entry_str": cmw.InvalidRecord,
    "json_record_four_entries": cmw.InvalidRecord,
    "json_record_float_type": cmw.WrongType,
    "json_record_float_value": cmw.WrongType,
    "json_record_object_type": cmw.WrongType,
    "json_truncated": cmw.MalformedEncoding,
    "cbor_record_empty": cmw.InvalidRecord,
    "cbor_record_one_entry": cmw.InvalidRecord,
    "cbor_record_four_entries": cmw.InvalidRecord,
    "cbor_record_float_type": cmw.WrongType,
    "cbor_record_type_overflow": cmw.InvalidContentFormat,
    "cbor_record_float_value": cmw.WrongType,
    "cbor_tag_truncated": cmw.MalformedEncoding,
    "cbor_tag_uint_content": cmw.WrongType,
    "cbor_uint_zero": cmw.MalformedEncoding,
    "cbor_empty_buffer": cmw.MalformedEncoding,
    "cbor_truncated_collection": cmw.MalformedEncoding,
    "json_collection_empty_inner_collection": cmw.EmptyCollection,
    "rust_invalid_record_empty": cmw.InvalidRecord,
    "rust_invalid_record_type_only": cmw.InvalidRecord,
    "rust_invalid_record_four_entries": cmw.InvalidRecord,
    "rust_invalid_record_string_ind": cmw.WrongType,
}


@pytest.mark.parametrize("entry", _entries("cbor", "json", valid=False))
def test_invalid_vector_is_rejected(cmw_dir: Path, entry: dict[str, Any]) -> None:
    with pytest.raises(cmw.CMWError) as info:
        cmw.decode(_raw(entry))
    expected = _EXPECTED_ERROR.get(entry["name"])
    if expected is not None:
        assert isinstance(info.value, expected), info.value
    decoder = cmw.decode_cbor if entry["form"] == "cbor" else cmw.decode_json
    with pytest.raises(cmw.CMWError):
        decoder(_raw(entry))


def test_json_string_wrapping_a_cmw_is_rejected_by_the_json_decoder(cmw_dir: Path) -> None:
    for name in (
        "rust_invalid_json_string_wrapping_record",
        "rust_invalid_collection_as_json_string",
    ):
        with pytest.raises(cmw.WrongType):
            cmw.decode_json(_raw(_by_name(name)))


# --- inline.json: TN/CF, __cmwc_t and labels ---------------------------------------------------


@pytest.mark.parametrize("entry", _entries("tn_cf"))
def test_tn_cf_pairs(cmw_dir: Path, entry: dict[str, Any]) -> None:
    if entry["valid"]:
        assert cmw.tn(entry["cf"]) == entry["tag_number"]
        assert cmw.cf_from_tn(entry["tag_number"]) == entry["cf"]
    elif "cf" in entry:
        with pytest.raises(cmw.InvalidContentFormat):
            cmw.tn(entry["cf"])
    else:
        with pytest.raises(cmw.InvalidTagNumber):
            cmw.cf_from_tn(entry["tag_number"])


@pytest.mark.parametrize("entry", _entries("cmwc_t_value"))
def test_collection_type_values(cmw_dir: Path, entry: dict[str, Any]) -> None:
    assert cmw.is_valid_collection_type(entry["text"]) is entry["valid"]
    item = {"a": cmw.CMWRecord("application/vnd.a", b"a")}
    if entry["valid"]:
        assert cmw.CMWCollection(item, entry["text"]).cmwc_t == entry["text"]
    else:
        with pytest.raises(cmw.InvalidCollectionType):
            cmw.CMWCollection(item, entry["text"])
        text = json.dumps({"__cmwc_t": entry["text"], "a": ["application/vnd.a", "YQ"]})
        with pytest.raises(cmw.InvalidCollectionType):
            cmw.decode(text.encode())


@pytest.mark.parametrize("entry", _entries("collection_label"))
def test_collection_labels(cmw_dir: Path, entry: dict[str, Any]) -> None:
    label = entry["value"]
    assert cmw.is_valid_label(label) is entry["valid"]
    record = cmw.CMWRecord("application/vnd.a", b"a")
    if entry["valid"]:
        assert label in cmw.CMWCollection({label: record})
    else:
        with pytest.raises(cmw.InvalidLabel):
            cmw.CMWCollection({label: record})


# --- X.509 id-pe-cmw ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", _x509_entries())
def test_x509_extension_value(cmw_dir: Path, entry: dict[str, Any]) -> None:
    value = bytes.fromhex(entry["extn_value_hex"])
    decoded = cmw.from_x509_extension(value)
    form: Literal["cbor", "json"]
    if "cmw_hex" in entry:
        assert decoded == cmw.decode_cbor(bytes.fromhex(entry["cmw_hex"]))
        form = "cbor"
    else:
        assert decoded == cmw.decode_json(entry["cmw_text"].encode())
        form = "json"
    if isinstance(entry["expected_cmw"], dict):
        assert normalise(decoded) == entry["expected_cmw"]
    else:  # "same as <vector name>"
        assert normalise(decoded) == _by_name(entry["expected_cmw"].split()[-1])["expected"]
    if form == "cbor" or entry.get("cmw_text", "").startswith('{"'):  # compact sources only
        assert cmw.to_x509_extension_value(decoded, form=form) == value


@pytest.mark.parametrize(
    "entry",
    [pytest.param(e, id=e["name"]) for e in _INLINE if "extn_value_hex" in e and "file" in e],
)
def test_x509_certificate_files(cmw_dir: Path, entry: dict[str, Any]) -> None:
    certificate = x509.load_der_x509_certificate((cmw_dir / entry["file"]).read_bytes())
    decoded = cmw.from_x509_extension(certificate)
    assert normalise(decoded) == entry["expected_cmw"]
    extension = certificate.extensions.get_extension_for_oid(cmw.ID_PE_CMW)
    assert extension.critical is entry["critical"]
    assert cmw.from_x509_extension(extension) == decoded
    assert cmw.from_x509_extension(extension.value) == decoded


# --- the draft's example files -----------------------------------------------------------------


def test_draft_json_example_files(cmw_dir: Path) -> None:
    for entry in _INLINE:
        if "file" in entry and entry.get("form") == "json":
            raw = (cmw_dir / entry["file"]).read_bytes()
            assert raw.decode() == entry["text"]
            assert normalise(cmw.decode(raw)) == entry["expected"]


def test_testdata_cbor_files(cmw_dir: Path) -> None:
    files = sorted((cmw_dir / "veraison-cmw-testdata").glob("*.cbor"))
    assert len(files) == 3
    for path in files:
        raw = path.read_bytes()
        (entry,) = [e for e in _INLINE if e.get("file", "").endswith(path.name)]
        assert raw == _raw(entry)
        assert normalise(cmw.decode(raw)) == entry["expected"]
        assert cmw.encode_cbor(cmw.decode(raw)) == raw


def test_draft_diag_examples_match_derived_bytes(cmw_dir: Path) -> None:
    derived = [e for e in _INLINE if e.get("source", {}).get("bytes_derived_from_diag")]
    assert len(derived) >= 5
    for entry in derived:
        diag = cmw_dir / "draft-ietf-rats-msg-wrap" / Path(entry["source"]["path"]).name
        assert diag.is_file(), diag
        assert normalise(cmw.decode(_raw(entry))) == entry["expected"]


def test_cmw_claim_in_jwt_example(cmw_dir: Path) -> None:
    claims = json.loads((cmw_dir / "draft-ietf-rats-msg-wrap" / "eat-example-1.json").read_text())
    inner = json.dumps(claims["cmw"]).encode()
    decoded = cmw.decode(inner)
    assert isinstance(decoded, cmw.CMWCollection)
    assert decoded.cmwc_t == "tag:example.com,2024:another-composite-attester"
    record = decoded["attester A"]
    assert isinstance(record, cmw.CMWRecord) and record.is_evidence
    assert record.value == b"{}\n"


def test_tag_with_embedded_cbor_keeps_bytes(cmw_dir: Path) -> None:
    decoded = cmw.decode(_raw(_by_name("draft_cmw_example_tag_2_embedded_cbor")))
    assert isinstance(decoded, cmw.CMWTag) and decoded.content_format == 64998
    assert cbor2.loads(decoded.value) == {10: bytes.fromhex("a7c76d8424a96fb4")}


# --- signed-cbor-cmw payloads --------------------------------------------------------------------


def _cose_payload(raw: bytes) -> bytes:
    message = cbor2.loads(raw)
    assert isinstance(message, cbor2.CBORTag) and message.tag == 18  # COSE_Sign1
    payload = message.value[2]
    assert isinstance(payload, bytes)
    return payload


@pytest.mark.parametrize("vector", [pytest.param(v, id=v["name"]) for v in _SIGNED["vectors"]])
def test_signed_cbor_cmw_payloads(cmw_dir: Path, vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["bytes_hex"])
    if vector["name"] == "truncated":
        with pytest.raises(cbor2.CBORDecodeError):
            cbor2.loads(raw)
        return
    payload = _cose_payload(raw)
    if "payload_hex" in vector:
        assert payload == bytes.fromhex(vector["payload_hex"])
    if vector["name"] == "invalid_cmw_payload":
        with pytest.raises(cmw.CMWError):
            cmw.decode(payload)
        return
    # The other negative vectors fail on their COSE headers or signature; the payload is a CMW.
    decoded = cmw.decode(payload)
    assert normalise(decoded) == _by_name("example_encode_CBOR_collection")["expected"]
    assert cmw.encode_cbor(decoded) == payload
