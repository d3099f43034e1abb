"""The TDX quote model: real samples parse to the values in results.json; bad bytes fail cleanly."""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attquic.errors import QuoteFormatError
from attquic.tdx.intel_root import INTEL_SGX_ROOT_CA_SHA256, intel_sgx_root_ca_der
from attquic.tdx.quote import TdAttributes, TdReportType, TdxQuote, parse_quote


def _results(samples: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = json.loads((samples / "results.json").read_text())["results"]
    return results


@pytest.fixture(scope="module")
def results(tdx_samples_dir: Path) -> list[dict[str, Any]]:
    return _results(tdx_samples_dir)


@pytest.fixture(scope="module")
def p1_bytes(tdx_samples_dir: Path) -> bytes:
    return (tdx_samples_dir / "phala-dcap-qvl/tdx_quote").read_bytes()


@pytest.fixture(scope="module")
def v5_bytes(tdx_samples_dir: Path) -> bytes:
    return (tdx_samples_dir / "phala-dcap-qvl/tdx_quote_outdated").read_bytes()


def test_every_sample_matches_results_json(
    tdx_samples_dir: Path, results: list[dict[str, Any]]
) -> None:
    assert len(results) == 7
    for case in results:
        data = (tdx_samples_dir / case["quote"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == case["sha256"]
        quote = parse_quote(data)
        body = quote.body
        assert quote.version == case["version"], case["case"]
        expected_type = {
            "TdReport10": TdReportType.TD_REPORT_10,
            "TdReport15": TdReportType.TD_REPORT_15,
        }
        assert body.report_type is expected_type[case["report_type"]]
        assert quote.fmspc.hex().upper() == case["fmspc"]
        assert quote.ca == "platform"
        assert body.tee_tcb_svn.hex() == case["tee_tcb_svn"]
        assert body.td_attributes.to_bytes().hex() == case["td_attributes"]
        assert body.xfam.hex() == case["xfam"]
        assert body.mrseam.hex() == case["mr_seam"]
        assert body.mrtd.hex() == case["mr_td"]
        assert body.mrconfigid.hex() == case["mr_config_id"]
        assert [r.hex() for r in body.rtmrs] == [case[f"rtmr{i}"] for i in range(4)]
        assert body.report_data.hex() == case["report_data"]
        if case["report_type"] == "TdReport15":
            assert body.mrservicetd is not None and body.mrservicetd.hex() == case["mr_service_td"]
            assert body.tee_tcb_svn2 is not None and body.tee_tcb_svn2.hex() == case["tee_tcb_svn2"]
        else:
            assert body.mrservicetd is None and body.tee_tcb_svn2 is None
        trailing = case["independent_crypto"]["trailing_bytes_after_sig_data"]
        assert len(quote.raw) == len(data) - trailing
        assert data.startswith(quote.raw)
        assert len(quote.pck_chain_der) == 3
        assert quote.chain_ends_with(intel_sgx_root_ca_der())


def test_structure_of_p1(p1_bytes: bytes) -> None:
    quote = parse_quote(p1_bytes)
    assert quote.header.attestation_key_type == 2
    assert quote.header.tee_type == 0x81
    assert quote.header.qe_vendor_id.hex() == "939a7233f79c4ca9940a0db3957f0607"
    assert quote.signed_bytes == p1_bytes[:632]
    sig = quote.signature_data
    assert len(sig.signature) == 64 and len(sig.attestation_key) == 64
    assert len(sig.qe_report.raw) == 384
    assert sig.qe_report.isv_prod_id == 2
    # the QE report binds the attestation key: SHA-256(AK || auth data) || 32 zero bytes
    digest = hashlib.sha256(sig.attestation_key + sig.qe_auth_data).digest()
    assert sig.qe_report.report_data == digest + bytes(32)
    assert sig.pck_cert_chain_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert quote.td_attributes.sept_ve_disable and not quote.td_attributes.debug


def test_v5_signed_bytes_include_descriptor(v5_bytes: bytes) -> None:
    quote = parse_quote(v5_bytes)
    assert quote.version == 5
    assert quote.signed_bytes == v5_bytes[: 48 + 6 + 648]
    assert quote.report_data == v5_bytes[574 : 574 + 64]


def test_td_attributes_decoding() -> None:
    attrs = TdAttributes(1 | 1 << 28 | 1 << 30 | 1 << 31 | 1 << 63)
    assert attrs.debug and attrs.sept_ve_disable and attrs.pks and attrs.kl and attrs.perfmon
    plain = TdAttributes(0)
    assert not (plain.debug or plain.sept_ve_disable or plain.pks or plain.kl or plain.perfmon)
    assert TdAttributes(1 << 28).to_bytes().hex() == "0000001000000000"
    assert TdAttributes(0x10000000_00000001).debug_bits == 1


def test_trailing_garbage_is_tolerated(p1_bytes: bytes) -> None:
    quote = parse_quote(p1_bytes[:4936] + b"extra bytes (only for testing purpose)")
    assert quote.raw == p1_bytes[:4936]


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "message"),
    [
        (0, "<H", 3, "unsupported quote version 3"),
        (2, "<H", 3, "attestation key type 3"),
        (4, "<I", 0, "TEE type 0x0 is not TDX"),
        (636 + 128, "<H", 4, "certification data type 4 is not 6"),
        (632, "<I", 10**6, "signature data length"),
    ],
)
def test_inconsistent_fields_are_named(
    p1_bytes: bytes, offset: int, fmt: str, value: int, message: str
) -> None:
    with pytest.raises(QuoteFormatError, match=message):
        parse_quote(_patch(p1_bytes, offset, fmt, value))


def test_nested_cert_data_type_must_be_5(p1_bytes: bytes) -> None:
    quote = parse_quote(p1_bytes)
    nested = 636 + 128 + 6 + 384 + 64 + 2 + len(quote.signature_data.qe_auth_data)
    assert struct.unpack_from("<H", p1_bytes, nested)[0] == 5
    with pytest.raises(QuoteFormatError, match="nested certification data type 4 is not 5"):
        parse_quote(_patch(p1_bytes, nested, "<H", 4))


@pytest.mark.parametrize(
    ("body_type", "body_size", "message"),
    [(1, 384, "unsupported v5 body type 1"), (4, 648, "body type 4"), (3, 584, "body size 584")],
)
def test_v5_body_descriptor_checked(
    v5_bytes: bytes, body_type: int, body_size: int, message: str
) -> None:
    data = _patch(_patch(v5_bytes, 48, "<H", body_type), 50, "<I", body_size)
    with pytest.raises(QuoteFormatError, match=message):
        parse_quote(data)


@pytest.mark.parametrize("length", [0, 1, 47, 48, 100, 631, 632, 635, 636, 800, 1300, 4935])
def test_truncation_is_rejected(p1_bytes: bytes, length: int) -> None:
    with pytest.raises(QuoteFormatError, match=r"truncated|exceeds"):
        parse_quote(p1_bytes[:length])


def test_shorter_signature_data_length_is_inconsistent(p1_bytes: bytes) -> None:
    sig_len = struct.unpack_from("<I", p1_bytes, 632)[0]
    with pytest.raises(QuoteFormatError):
        parse_quote(_patch(p1_bytes, 632, "<I", sig_len - 1))
    with pytest.raises(QuoteFormatError, match=r"does not match|unexpected"):
        parse_quote(_patch(p1_bytes, 632, "<I", sig_len + 1) + bytes(1))


def test_broken_pem_chain_raises_quote_format_error(p1_bytes: bytes) -> None:
    quote = parse_quote(p1_bytes)
    start = p1_bytes.index(b"-----BEGIN CERTIFICATE-----") + 40
    broken = parse_quote(p1_bytes[:start] + b"!" + p1_bytes[start + 1 :])
    with pytest.raises(QuoteFormatError, match="base64"):
        _ = broken.fmspc
    assert quote.fmspc == bytes.fromhex("b0c06f000000")


def _touch_everything(quote: TdxQuote) -> None:
    for name in ("fmspc", "ca", "pck_chain_der"):
        with contextlib.suppress(QuoteFormatError):
            getattr(quote, name)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_quote_format_error(data: bytes) -> None:
    with contextlib.suppress(QuoteFormatError):
        _touch_everything(parse_quote(data))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_real_quote_raises_only_quote_format_error(
    p1_bytes: bytes, data: st.DataObject
) -> None:
    base = bytearray(p1_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        offset = data.draw(st.integers(0, len(base) - 1))
        base[offset] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    with contextlib.suppress(QuoteFormatError):
        _touch_everything(parse_quote(bytes(base[:cut])))


def test_intel_root_is_pinned() -> None:
    der = intel_sgx_root_ca_der()
    assert hashlib.sha256(der).hexdigest() == INTEL_SGX_ROOT_CA_SHA256
    assert INTEL_SGX_ROOT_CA_SHA256 == (
        "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
    )


def test_intel_root_matches_the_sample_copy(tdx_samples_dir: Path) -> None:
    assert (
        intel_sgx_root_ca_der()
        == (tdx_samples_dir / "intel-root/Intel_SGX_Root_CA.der").read_bytes()
    )


def test_tampered_root_text_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from attquic.tdx import intel_root

    tampered = intel_root.INTEL_SGX_ROOT_CA_PEM.replace("MIICjzCC", "MIICjzCD")
    monkeypatch.setattr(intel_root, "INTEL_SGX_ROOT_CA_PEM", tampered)
    intel_root.intel_sgx_root_ca_der.cache_clear()
    try:
        with pytest.raises(intel_root.RootCertificateMismatch):
            intel_root.intel_sgx_root_ca_der()
    finally:
        monkeypatch.undo()
        intel_root.intel_sgx_root_ca_der.cache_clear()
    assert intel_root.intel_sgx_root_ca_der()
