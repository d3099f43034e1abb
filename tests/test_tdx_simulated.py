"""The simulated TDX hierarchy and attester, checked with dcap-qvl under the test root."""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import warnings
from pathlib import Path
from typing import Any, Literal

import dcap_qvl
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attquic import profile
from attquic.errors import ConfigurationError
from attquic.keyschedule import Binding
from attquic.tdx import _sim_pki, simulated
from attquic.tdx.simulated import (
    BANNER,
    DEFAULT_MRTD,
    DEFAULT_RTMRS,
    INTEL_ROOT_REJECTION,
    KNOB_OUTCOMES,
    OTHER_MRTD,
    OUT_OF_DATE_ADVISORIES,
    SIMULATED_FMSPC,
    TD_ATTR_DEBUG,
    TD_ATTR_SEPT_VE_DISABLE,
    SimulatedTdxAttester,
    SimulatedTdxHierarchy,
    SimulatedTdxWarning,
    SimulationKnobs,
)

pytestmark = pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")

#: 2026-01-01T00:00:00Z; every test passes time explicitly.
NOW = 1767225600
REPORT_DATA = bytes(range(64))
VERSIONS: list[tuple[Literal[4, 5], Literal[2, 3]]] = [(4, 3), (5, 3), (5, 2)]
REPORT_DATA_OFFSET = {4: 568, 5: 574}
MRTD_OFFSET = {4: 184, 5: 190}
NO_KNOBS = SimulationKnobs()


@pytest.fixture(scope="module")
def hierarchy() -> SimulatedTdxHierarchy:
    return SimulatedTdxHierarchy.default()


def dcap_verify(
    hierarchy: SimulatedTdxHierarchy,
    quote: bytes,
    *,
    now: int = NOW,
    knobs: SimulationKnobs = NO_KNOBS,
    collateral_at: int | None = None,
) -> Any:
    collateral = dcap_qvl.QuoteCollateralV3.from_json(
        hierarchy.collateral_json(now if collateral_at is None else collateral_at, knobs=knobs)
    )
    return dcap_qvl.verify_with_root_ca(quote, collateral, hierarchy.root_ca_der, now)


# --- good quotes ---------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "body_type"), VERSIONS)
def test_good_quote_is_up_to_date(
    hierarchy: SimulatedTdxHierarchy, version: Literal[4, 5], body_type: Literal[2, 3]
) -> None:
    quote = hierarchy.quote(REPORT_DATA, version=version, v5_body_type=body_type)
    report = dcap_verify(hierarchy, quote)
    assert report.status == "UpToDate"
    assert report.advisory_ids == []
    assert report.ppid == hierarchy.ppid


@pytest.mark.parametrize(("version", "body_type"), VERSIONS)
def test_quote_layout(
    hierarchy: SimulatedTdxHierarchy, version: Literal[4, 5], body_type: Literal[2, 3]
) -> None:
    quote = hierarchy.quote(REPORT_DATA, version=version, v5_body_type=body_type)
    offset = REPORT_DATA_OFFSET[version]
    assert quote[offset : offset + 64] == REPORT_DATA
    assert quote[MRTD_OFFSET[version] : MRTD_OFFSET[version] + 48] == DEFAULT_MRTD
    assert struct.unpack_from("<HHI", quote) == (version, 2, 0x81)
    body_size = 584
    if version == 5:
        body_size = 648 if body_type == 3 else 584
        assert struct.unpack_from("<HI", quote, 48) == (body_type, body_size)
    signed_end = 48 + (6 if version == 5 else 0) + body_size
    (signature_data_length,) = struct.unpack_from("<I", quote, signed_end)
    assert len(quote) == signed_end + 4 + signature_data_length
    assert quote[signed_end + 4 + 64 : signed_end + 4 + 128] == hierarchy.attestation_public_key

    parsed = dcap_qvl.parse_quote(quote)
    assert parsed.header.version == version
    assert parsed.is_tdx()
    assert parsed.ca() == "platform"
    assert parsed.fmspc() == SIMULATED_FMSPC.hex().upper()
    assert parsed.report.report_data == REPORT_DATA
    assert parsed.report.mr_td == DEFAULT_MRTD
    rtmrs = (parsed.report.rt_mr0, parsed.report.rt_mr1, parsed.report.rt_mr2, parsed.report.rt_mr3)
    assert rtmrs == DEFAULT_RTMRS
    attributes = int.from_bytes(parsed.report.td_attributes, "little")
    assert attributes == TD_ATTR_SEPT_VE_DISABLE
    assert parsed.cert_chain_pem_bytes() == hierarchy.pck_chain_pem


def test_quote_signature_independently(hierarchy: SimulatedTdxHierarchy) -> None:
    """The AK signs header‖body; the QE report binds the AK; the PCK key signs the QE report."""
    quote = hierarchy.quote(REPORT_DATA)
    signed, sig_data = quote[:632], quote[636:]
    ak_raw = sig_data[64:128]
    ak = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + ak_raw)
    ak.verify(_der_signature(sig_data[:64]), signed, ec.ECDSA(hashes.SHA256()))
    cert_type, _ = struct.unpack_from("<HI", sig_data, 128)
    assert cert_type == 6
    qe_report, qe_signature = sig_data[134 : 134 + 384], sig_data[518:582]
    (auth_length,) = struct.unpack_from("<H", sig_data, 582)
    auth = sig_data[584 : 584 + auth_length]
    assert qe_report[320:352] == hashlib.sha256(ak_raw + auth).digest()
    assert qe_report[352:384] == bytes(32)
    pck_key = hierarchy.pck_certificate.public_key()
    assert isinstance(pck_key, ec.EllipticCurvePublicKey)
    pck_key.verify(_der_signature(qe_signature), qe_report, ec.ECDSA(hashes.SHA256()))


def _der_signature(raw: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def test_quote_is_deterministic_and_commits_to_report_data(
    hierarchy: SimulatedTdxHierarchy,
) -> None:
    assert hierarchy.quote(REPORT_DATA) == hierarchy.quote(REPORT_DATA)
    other = hierarchy.quote(bytes(64))
    assert other != hierarchy.quote(REPORT_DATA)
    assert dcap_verify(hierarchy, other).status == "UpToDate"


def test_report_data_tamper_is_detected(hierarchy: SimulatedTdxHierarchy) -> None:
    quote = bytearray(hierarchy.quote(REPORT_DATA))
    quote[568] ^= 1
    with pytest.raises(ValueError, match="ISV enclave report signature is invalid"):
        dcap_verify(hierarchy, bytes(quote))


def test_custom_measurements(hierarchy: SimulatedTdxHierarchy) -> None:
    mrtd = hashlib.sha384(b"custom").digest()
    rtmrs = [hashlib.sha384(bytes([i])).digest() for i in range(4)]
    quote = hierarchy.quote(REPORT_DATA, mrtd=mrtd, rtmrs=rtmrs)
    report = dcap_qvl.parse_quote(quote).report
    assert report.mr_td == mrtd
    assert [report.rt_mr0, report.rt_mr1, report.rt_mr2, report.rt_mr3] == rtmrs
    assert dcap_verify(hierarchy, quote).status == "UpToDate"


@pytest.mark.parametrize("length", [0, 32, 63, 65])
def test_report_data_length_enforced(hierarchy: SimulatedTdxHierarchy, length: int) -> None:
    with pytest.raises(ConfigurationError, match="64 bytes"):
        hierarchy.quote(bytes(length))


def test_bad_arguments_rejected(hierarchy: SimulatedTdxHierarchy) -> None:
    with pytest.raises(ConfigurationError):
        hierarchy.quote(REPORT_DATA, version=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        hierarchy.quote(REPORT_DATA, mrtd=bytes(47))
    with pytest.raises(ConfigurationError):
        hierarchy.quote(REPORT_DATA, rtmrs=[bytes(48)] * 3)
    with pytest.raises(ConfigurationError):
        SimulationKnobs.only("no_such_knob")


# --- trust anchor and collateral -----------------------------------------------------------


def test_intel_root_rejects_simulated_quotes(hierarchy: SimulatedTdxHierarchy) -> None:
    collateral = dcap_qvl.QuoteCollateralV3.from_json(hierarchy.collateral_json(NOW))
    for version in (4, 5):
        with pytest.raises(ValueError, match=INTEL_ROOT_REJECTION):
            dcap_qvl.verify(hierarchy.quote(REPORT_DATA, version=version), collateral, NOW)


def test_other_seed_is_another_root(hierarchy: SimulatedTdxHierarchy) -> None:
    same = SimulatedTdxHierarchy()
    assert same.root_ca_der == hierarchy.root_ca_der  # deterministic across instances
    assert same.quote(REPORT_DATA) == hierarchy.quote(REPORT_DATA)
    other = SimulatedTdxHierarchy(b"another seed")
    assert other.root_ca_der != hierarchy.root_ca_der
    with pytest.raises(ValueError):
        dcap_verify(other, hierarchy.quote(REPORT_DATA))
    assert SimulatedTdxHierarchy.default() is hierarchy


def test_collateral_shape(hierarchy: SimulatedTdxHierarchy) -> None:
    collateral = json.loads(hierarchy.collateral_json(NOW))
    assert set(collateral) == {
        "pck_crl_issuer_chain",
        "root_ca_crl",
        "pck_crl",
        "tcb_info_issuer_chain",
        "tcb_info",
        "tcb_info_signature",
        "qe_identity_issuer_chain",
        "qe_identity",
        "qe_identity_signature",
    }
    tcb_info = json.loads(collateral["tcb_info"])
    assert (tcb_info["id"], tcb_info["version"]) == ("TDX", 3)
    assert tcb_info["fmspc"] == SIMULATED_FMSPC.hex().upper()
    assert tcb_info["tdxModuleIdentities"][0]["id"] == "TDX_01"
    qe_identity = json.loads(collateral["qe_identity"])
    assert (qe_identity["id"], qe_identity["version"]) == ("TD_QE", 2)

    issue, next_update = SimulatedTdxHierarchy.collateral_window(NOW)
    assert issue < NOW < next_update
    assert tcb_info["issueDate"] == "2025-12-31T00:00:00Z"
    assert tcb_info["nextUpdate"] == "2026-01-30T00:00:00Z"

    signer = x509.load_pem_x509_certificates(collateral["tcb_info_issuer_chain"].encode())[0]
    key = signer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    for item in ("tcb_info", "qe_identity"):
        signature = _der_signature(bytes.fromhex(collateral[f"{item}_signature"]))
        key.verify(signature, collateral[item].encode(), ec.ECDSA(hashes.SHA256()))

    crl = x509.load_der_x509_crl(bytes.fromhex(collateral["pck_crl"]))
    assert len(list(crl)) == 0
    assert crl.next_update_utc is not None
    assert int(crl.next_update_utc.timestamp()) == next_update


def test_collateral_valid_only_in_its_window(hierarchy: SimulatedTdxHierarchy) -> None:
    quote = hierarchy.quote(REPORT_DATA)
    issue, next_update = SimulatedTdxHierarchy.collateral_window(NOW)
    assert dcap_verify(hierarchy, quote, now=next_update - 1, collateral_at=NOW).status == (
        "UpToDate"
    )
    with pytest.raises(ValueError, match="CrlExpired"):
        dcap_verify(hierarchy, quote, now=next_update + 1, collateral_at=NOW)
    with pytest.raises(ValueError, match="future"):
        dcap_verify(hierarchy, quote, now=issue - 1, collateral_at=NOW)


# --- knobs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("knob", SimulationKnobs.names())
def test_knob_outcome(hierarchy: SimulatedTdxHierarchy, knob: str, version: Literal[4, 5]) -> None:
    knobs = SimulationKnobs.only(knob)
    quote = hierarchy.quote(REPORT_DATA, version=version, knobs=knobs)
    kind, expected = KNOB_OUTCOMES[knob].split(":", 1)
    if kind == "status":
        assert dcap_verify(hierarchy, quote, knobs=knobs).status == expected
    else:
        with pytest.raises(ValueError, match=expected):
            dcap_verify(hierarchy, quote, knobs=knobs)


def test_every_knob_has_a_documented_outcome() -> None:
    assert set(KNOB_OUTCOMES) == {"none", *SimulationKnobs.names()}
    for knob in SimulationKnobs.names():
        assert f"``{knob}``" in (simulated.__doc__ or "")


def test_out_of_date_reports_advisories(hierarchy: SimulatedTdxHierarchy) -> None:
    quote = hierarchy.quote(REPORT_DATA, knobs=SimulationKnobs(out_of_date=True))
    report = dcap_verify(hierarchy, quote)
    assert report.status == "OutOfDate"
    assert sorted(report.advisory_ids) == sorted(OUT_OF_DATE_ADVISORIES)


def test_debug_and_other_mrtd_show_in_the_quote(hierarchy: SimulatedTdxHierarchy) -> None:
    debug = dcap_qvl.parse_quote(hierarchy.quote(REPORT_DATA, knobs=SimulationKnobs(debug=True)))
    assert int.from_bytes(debug.report.td_attributes, "little") & TD_ATTR_DEBUG
    other = hierarchy.quote(REPORT_DATA, knobs=SimulationKnobs(other_mrtd=True))
    assert dcap_qvl.parse_quote(other).report.mr_td == OTHER_MRTD != DEFAULT_MRTD


def test_revoked_lists_the_pck_serial(hierarchy: SimulatedTdxHierarchy) -> None:
    collateral = hierarchy.collateral(NOW, knobs=SimulationKnobs(revoked=True))
    crl = x509.load_der_x509_crl(bytes.fromhex(collateral["pck_crl"]))
    serial = hierarchy.pck_certificate.serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    # The quote itself is fine: with normal collateral it verifies.
    assert dcap_verify(hierarchy, hierarchy.quote(REPORT_DATA)).status == "UpToDate"


def test_expired_window_ends_before_now() -> None:
    issue, next_update = SimulatedTdxHierarchy.collateral_window(
        NOW, knobs=SimulationKnobs(expired=True)
    )
    assert issue < next_update < NOW


# --- the SGX extension DER -----------------------------------------------------------------


def test_der_primitives() -> None:
    assert _sim_pki._der_oid("1.2.840.113741.1.13.1.1") == bytes.fromhex("060a2a864886f84d010d0101")
    assert _sim_pki._der_integer(0) == bytes.fromhex("020100")
    assert _sim_pki._der_integer(127) == bytes.fromhex("02017f")
    assert _sim_pki._der_integer(128) == bytes.fromhex("02020080")
    assert _sim_pki._der_integer(256) == bytes.fromhex("02020100")
    assert _sim_pki._der_length(200) == bytes.fromhex("81c8")
    assert _sim_pki._der_length(300) == bytes.fromhex("82012c")


def test_sgx_extension_matches_a_real_pck_certificate(tdx_samples_dir: Path) -> None:
    """Re-encode the real P1 PCK leaf's extension from its values: byte-identical."""
    quote = (tdx_samples_dir / "phala-dcap-qvl" / "tdx_quote").read_bytes()
    parsed = dcap_qvl.parse_quote(quote)
    leaf = x509.load_pem_x509_certificates(parsed.cert_chain_pem_bytes())[0]
    real = leaf.extensions.get_extension_for_oid(
        x509.ObjectIdentifier(_sim_pki.SGX_EXTENSION_OID)
    ).value
    assert isinstance(real, x509.UnrecognizedExtension)
    values = parsed.pck_extension()
    ours = _sim_pki.encode_sgx_extension(
        ppid=values.ppid,
        tcb=_sim_pki.PckTcb(tuple(values.cpu_svn), values.pce_svn),
        pce_id=values.pce_id,
        fmspc=values.fmspc,
        sgx_type=values.sgx_type,
        platform_instance_id=values.platform_instance_id,
        dynamic_platform=True,
        cached_keys=True,
        smt_enabled=True,
    )
    assert ours == real.value


def test_simulated_pck_extension_parses(hierarchy: SimulatedTdxHierarchy) -> None:
    extension = dcap_qvl.parse_quote(hierarchy.quote(REPORT_DATA)).pck_extension()
    assert extension.fmspc == SIMULATED_FMSPC
    assert extension.ppid == hierarchy.ppid
    assert extension.pce_svn == 13
    assert extension.cpu_svn == bytes([3, 3, 2, 2, 4, 1, 0, 5] + [0] * 8)
    assert extension.sgx_type == 1


def test_strict_dcap_policy_accepts_the_simulated_platform(
    hierarchy: SimulatedTdxHierarchy,
) -> None:
    collateral = dcap_qvl.QuoteCollateralV3.from_json(hierarchy.collateral_json(NOW))
    verifier = dcap_qvl.QuoteVerifier(hierarchy.root_ca_der)
    claims = verifier.verify_with_policy(
        hierarchy.quote(REPORT_DATA), collateral, NOW, dcap_qvl.QuotePolicy.strict(NOW)
    )
    assert json.loads(claims.to_json())["tcb"]["status"] == "UpToDate"


# --- the attester --------------------------------------------------------------------------


def _binding() -> Binding:
    return Binding(hash_name="sha256", binding=b"\x11" * 32, aik_pub_hash=b"\x22" * 32)


@pytest.mark.anyio
@pytest.mark.parametrize("version", [4, 5])
async def test_attester_produces_a_verifiable_cmw(version: Literal[4, 5]) -> None:
    from attquic.cmw import CMWRecord

    attester = SimulatedTdxAttester(version=version)
    binding = _binding()
    record = await attester.attest(binding)
    assert isinstance(record, CMWRecord)
    assert record.type == profile.TDX_QUOTE_MEDIA_TYPE
    assert record.ind == profile.IND_EVIDENCE
    quote = record.value
    offset = REPORT_DATA_OFFSET[version]
    assert quote[offset : offset + 64] == binding.report_data
    collateral = dcap_qvl.QuoteCollateralV3.from_json(attester.collateral_json(NOW))
    report = dcap_qvl.verify_with_root_ca(quote, collateral, attester.root_ca_der, NOW)
    assert report.status == "UpToDate"
    assert attester.hierarchy is SimulatedTdxHierarchy.default()


def test_attester_measurements_and_knobs() -> None:
    mrtd = hashlib.sha384(b"demo").digest()
    attester = SimulatedTdxAttester(mrtd=mrtd, knobs=SimulationKnobs(expired=True))
    assert attester.measurements.mrtd == mrtd
    assert attester.measurements.rtmrs == DEFAULT_RTMRS
    assert dcap_qvl.parse_quote(attester.get_quote(REPORT_DATA)).report.mr_td == mrtd
    with pytest.raises(ValueError, match="CrlExpired"):
        dcap_qvl.verify_with_root_ca(
            attester.get_quote(REPORT_DATA),
            dcap_qvl.QuoteCollateralV3.from_json(attester.collateral_json(NOW)),
            attester.root_ca_der,
            NOW,
        )


def test_simulation_warns_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulated, "_warned", False)
    with pytest.warns(SimulatedTdxWarning, match="NOT A REAL TEE") as first:
        attester = SimulatedTdxAttester()
    assert len(first) == 1 and BANNER in str(first[0].message)
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        attester.get_quote(REPORT_DATA)
        SimulatedTdxAttester()
        simulated.SimulatedCollateral()
    assert [w for w in later if issubclass(w.category, SimulatedTdxWarning)] == []


def test_attester_settings_and_quote_counts_are_logged_at_info(
    hierarchy: SimulatedTdxHierarchy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(simulated, "_quote_count", 0)
    with caplog.at_level(logging.INFO, logger="attquic.tdx.simulated"):
        SimulatedTdxAttester()
        for _ in range(20):
            hierarchy.quote(REPORT_DATA)
    events = [getattr(r, "attquic", {}) for r in caplog.records]
    assert all(r.levelno == logging.INFO for r in caplog.records)
    assert any(e.get("event") == "simulated_tdx.attester" for e in events)
    counts = [e["quotes_generated"] for e in events if e.get("event") == "simulated_tdx.quote"]
    assert counts == [1, 10]


# --- the attquic TDX verifier (attquic.tdx.verifier) accepts and rejects for the right reason --

VERIFIER_REJECTIONS: dict[str, tuple[str, str]] = {
    "debug": ("PolicyRejected", "debug"),
    "other_mrtd": ("PolicyRejected", "MRTD"),
    "out_of_date": ("PolicyRejected", "TCB status OutOfDate is not accepted"),
    "revoked": ("EvidenceInvalid", "CertRevoked"),
    "expired": ("EvidenceInvalid", "collateral not valid at"),
    "bad_quote_signature": ("EvidenceInvalid", "ISV enclave report signature is invalid"),
    "bad_qe_report_signature": ("EvidenceInvalid", "Signature is invalid for qe_report"),
}


def _demo_policy(**changes: Any) -> Any:
    from attquic.tdx.policy import AppraisalPolicy

    return AppraisalPolicy(
        accepted_mrtd=(DEFAULT_MRTD,),
        accepted_rtmr0=(DEFAULT_RTMRS[0],),
        accepted_rtmr3=(DEFAULT_RTMRS[3],),
        **changes,
    )


def _verify(
    hierarchy: SimulatedTdxHierarchy,
    quote: bytes,
    knobs: SimulationKnobs = NO_KNOBS,
    **kwargs: Any,
) -> Any:
    from attquic.tdx.collateral import Collateral
    from attquic.tdx.verifier import verify_quote

    collateral = Collateral.from_json(hierarchy.collateral_json(NOW, knobs=knobs))
    options: dict[str, Any] = {
        "now": NOW,
        "policy": _demo_policy(),
        "expected_report_data": REPORT_DATA,
        "unsafe_root_ca_der": hierarchy.root_ca_der,
    }
    options.update(kwargs)
    return verify_quote(quote, collateral, **options)


@pytest.mark.parametrize("version", [4, 5])
def test_verifier_accepts_good_quote(
    hierarchy: SimulatedTdxHierarchy, version: Literal[4, 5]
) -> None:
    result = _verify(hierarchy, hierarchy.quote(REPORT_DATA, version=version))
    assert result.tcb_status == "UpToDate"
    assert result.advisory_ids == ()
    assert result.mrtd == DEFAULT_MRTD
    assert result.rtmrs == DEFAULT_RTMRS
    assert result.report_data == REPORT_DATA
    assert result.fmspc == SIMULATED_FMSPC
    assert result.verified_at == NOW


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("knob", sorted(VERIFIER_REJECTIONS))
def test_verifier_rejects_each_knob_for_its_reason(
    hierarchy: SimulatedTdxHierarchy, knob: str, version: Literal[4, 5]
) -> None:
    from attquic import errors

    knobs = SimulationKnobs.only(knob)
    error_name, reason = VERIFIER_REJECTIONS[knob]
    quote = hierarchy.quote(REPORT_DATA, version=version, knobs=knobs)
    with pytest.raises(getattr(errors, error_name), match=reason):
        _verify(hierarchy, quote, knobs)


def test_verifier_out_of_date_accepted_when_policy_allows(
    hierarchy: SimulatedTdxHierarchy,
) -> None:
    quote = hierarchy.quote(REPORT_DATA, knobs=SimulationKnobs(out_of_date=True))
    policy = _demo_policy(
        accepted_tcb_statuses=frozenset({"UpToDate", "OutOfDate"}),
        accepted_advisory_ids=frozenset(OUT_OF_DATE_ADVISORIES),
    )
    result = _verify(hierarchy, quote, policy=policy)
    assert result.tcb_status == "OutOfDate"
    assert sorted(result.advisory_ids) == sorted(OUT_OF_DATE_ADVISORIES)


def test_verifier_needs_the_unsafe_root_and_the_binding(
    hierarchy: SimulatedTdxHierarchy,
) -> None:
    from attquic.errors import BindingMismatch, EvidenceInvalid

    quote = hierarchy.quote(REPORT_DATA)
    with pytest.raises(EvidenceInvalid, match="Intel SGX Root CA"):
        _verify(hierarchy, quote, unsafe_root_ca_der=None)
    with pytest.raises(BindingMismatch):
        _verify(hierarchy, quote, expected_report_data=bytes(64))


@pytest.mark.anyio
async def test_attester_to_tdx_verifier_end_to_end() -> None:
    from attquic.errors import BindingMismatch
    from attquic.tdx.collateral import Collateral, StaticCollateral
    from attquic.tdx.verifier import TdxVerifier

    attester = SimulatedTdxAttester(version=5)
    verifier = TdxVerifier(
        StaticCollateral(Collateral.from_json(attester.collateral_json(NOW))),
        _demo_policy(),
        unsafe_root_ca_der=attester.root_ca_der,
    )
    binding = _binding()
    cmw = await attester.attest(binding)
    result = await verifier.verify(cmw, binding, now=NOW)
    assert result.mrtd == DEFAULT_MRTD
    assert result.report_data == binding.report_data
    other = Binding(hash_name="sha256", binding=b"\x33" * 32, aik_pub_hash=b"\x22" * 32)
    with pytest.raises(BindingMismatch):
        await verifier.verify(cmw, other, now=NOW)


# --- attquic quote simulate ----------------------------------------------------------------


def _run_simulate(*argv: str) -> int:
    import argparse

    from attquic._cli import quote_simulate

    parser = argparse.ArgumentParser(prog="attquic quote")
    quote_simulate.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", *argv])
    code: int = args.handler(args)
    return code


def test_cli_simulate_writes_verifiable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_data = bytes(range(64, 128))
    code = _run_simulate(
        "--out-dir", str(tmp_path), "--version", "5", "--at", str(NOW),
        "--report-data", report_data.hex(),
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "SIMULATED TDX" in captured.out  # (the warning itself: once per process, stderr)
    assert str(tmp_path / "quote.bin") in captured.out
    quote = (tmp_path / "quote.bin").read_bytes()
    assert quote[574:638] == report_data
    root_der = (tmp_path / "test-root-ca.der").read_bytes()
    assert x509.load_pem_x509_certificate((tmp_path / "test-root-ca.pem").read_bytes()) == (
        x509.load_der_x509_certificate(root_der)
    )
    collateral = dcap_qvl.QuoteCollateralV3.from_json((tmp_path / "collateral.json").read_text())
    assert dcap_qvl.verify_with_root_ca(quote, collateral, root_der, NOW).status == "UpToDate"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--debug"], "Debug mode is enabled"),
        (["--revoked"], "CertRevoked"),
        (["--expired"], "CrlExpired"),
        (["--bad-signature"], "ISV enclave report signature is invalid"),
        (["--bad-qe-report-signature"], "Signature is invalid for qe_report"),
    ],
)
def test_cli_simulate_knobs(tmp_path: Path, flags: list[str], expected: str) -> None:
    assert _run_simulate("--out-dir", str(tmp_path), "--at", str(NOW), *flags) == 0
    collateral = dcap_qvl.QuoteCollateralV3.from_json((tmp_path / "collateral.json").read_text())
    with pytest.raises(ValueError, match=expected):
        dcap_qvl.verify_with_root_ca(
            (tmp_path / "quote.bin").read_bytes(),
            collateral,
            (tmp_path / "test-root-ca.der").read_bytes(),
            NOW,
        )


def test_cli_simulate_mrtd_and_out_of_date(tmp_path: Path) -> None:
    mrtd = hashlib.sha384(b"cli").digest()
    args = ["--out-dir", str(tmp_path), "--at", str(NOW), "--mrtd", mrtd.hex(), "--out-of-date"]
    assert _run_simulate(*args) == 0
    quote = (tmp_path / "quote.bin").read_bytes()
    assert quote[184:232] == mrtd
    collateral = dcap_qvl.QuoteCollateralV3.from_json((tmp_path / "collateral.json").read_text())
    report = dcap_qvl.verify_with_root_ca(
        quote, collateral, (tmp_path / "test-root-ca.der").read_bytes(), NOW
    )
    assert report.status == "OutOfDate"


@pytest.mark.parametrize(
    "bad",
    [["--report-data", "00" * 63], ["--report-data", "zz"], ["--mrtd", "00" * 47]],
)
def test_cli_simulate_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: list[str]
) -> None:
    assert _run_simulate("--out-dir", str(tmp_path), *bad) == 2
    assert capsys.readouterr().err.startswith("attquic quote simulate: ")
    assert not (tmp_path / "quote.bin").exists()


def test_cli_simulate_unwritable_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _run_simulate("--out-dir", str(blocker / "sub"), "--at", str(NOW)) == 2
