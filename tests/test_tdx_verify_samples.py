"""Full DCAP verification of the real samples: each gets the verdict the README lists."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from data_paths import TDX_SAMPLES

from attquic.attestation import TrustAnchor
from attquic.errors import BindingMismatch, EvidenceInvalid, PolicyRejected, QuoteFormatError
from attquic.profile import TDX_QUOTE_MEDIA_TYPE
from attquic.tdx import (
    AppraisalPolicy,
    Collateral,
    StaticCollateral,
    TdxAttestation,
    TdxVerifier,
    check_quote,
    intel_sgx_root_ca_der,
    parse_quote,
    verify_quote,
)
from attquic.tdx import verifier as verifier_module

P1_QUOTE = "phala-dcap-qvl/tdx_quote"
P1_COLLATERAL = "phala-dcap-qvl/tdx_quote_collateral.json"
P1_NOW = 1752919234
Z1_ADVISORIES = ("INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986")

# case -> (accepted, tcb_status, reason fragment) under the default policy, at the README's time
EXPECTED = {
    "phala-v4-uptodate": (True, "UpToDate", None),
    "gotdx-cos113-v4-x-zkdcap-coll": (True, "UpToDate", None),
    "zkdcap-gcp-v4-outofdate": (False, "OutOfDate", "TCB status OutOfDate is not accepted"),
    "NEG phala-v5-no-tcb-level": (False, None, "TCB not supported"),
    "NEG gotdx-spr-e4-v4-no-tcb-level": (False, None, "TCB not supported"),
    "NEG trustee-v4-debug-td": (False, None, "debug mode"),
    "NEG zkdcap-quote_v4-no-sept-ve-disable": (False, None, "SEPT_VE_DISABLE is not set"),
}


def _cases(samples: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = json.loads((samples / "results.json").read_text())["results"]
    return results


@pytest.fixture(scope="module")
def cases(tdx_samples_dir: Path) -> dict[str, dict[str, Any]]:
    return {case["case"]: case for case in _cases(tdx_samples_dir)}


@pytest.fixture(scope="module")
def p1(tdx_samples_dir: Path) -> bytes:
    return (tdx_samples_dir / P1_QUOTE).read_bytes()


@pytest.fixture(scope="module")
def p1_collateral(tdx_samples_dir: Path) -> Collateral:
    return Collateral.from_file(tdx_samples_dir / P1_COLLATERAL)


def _load(samples: Path, case: dict[str, Any]) -> tuple[bytes, Collateral]:
    return (samples / case["quote"]).read_bytes(), Collateral.from_file(
        samples / case["collateral"]
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("when", ["dcap_qvl_end_minus_1s", "dcap_qvl_midpoint"])
def test_sample_verdicts(
    tdx_samples_dir: Path, cases: dict[str, dict[str, Any]], name: str, when: str
) -> None:
    case = cases[name]
    quote, collateral = _load(tdx_samples_dir, case)
    now = case[when]["t"]
    accepted, status, fragment = EXPECTED[name]
    verdict = check_quote(quote, collateral, now=now)
    assert verdict.accepted is accepted
    assert verdict.tcb_status == status
    if "status" in case[when]:
        assert verdict.tcb_status == case[when]["status"]
        assert list(verdict.advisory_ids) == case[when]["advisory_ids"]
    if accepted:
        assert verdict.reasons == ()
        result = verify_quote(quote, collateral, now=now)
        assert isinstance(result, TdxAttestation)
        assert result.tcb_status == status
        assert result.mrtd.hex() == case["mr_td"]
        assert result.report_data.hex() == case["report_data"]
        assert result.fmspc.hex().upper() == case["fmspc"]
        assert result.verified_at == now and result.media_type == TDX_QUOTE_MEDIA_TYPE
        assert result.evidence == parse_quote(quote).raw
    else:
        assert fragment is not None
        assert any(fragment in reason for reason in verdict.reasons), verdict.reasons


def test_collateral_windows_match_readme(
    tdx_samples_dir: Path, cases: dict[str, dict[str, Any]]
) -> None:
    for case in cases.values():
        _, collateral = _load(tdx_samples_dir, case)
        assert [collateral.not_before, collateral.not_after] == case["window_unix"]


def test_out_of_date_raises_policy_rejected_listing_everything(
    tdx_samples_dir: Path, cases: dict[str, dict[str, Any]]
) -> None:
    quote, collateral = _load(tdx_samples_dir, cases["zkdcap-gcp-v4-outofdate"])
    with pytest.raises(PolicyRejected) as info:
        verify_quote(quote, collateral, now=1740048927)
    assert len(info.value.reasons) == 4  # status + three advisories
    assert all(any(a in r for r in info.value.reasons) for a in Z1_ADVISORIES)


def test_out_of_date_accepted_by_a_policy_allowing_it(
    tdx_samples_dir: Path, cases: dict[str, dict[str, Any]]
) -> None:
    quote, collateral = _load(tdx_samples_dir, cases["zkdcap-gcp-v4-outofdate"])
    policy = AppraisalPolicy(
        accepted_tcb_statuses=frozenset({"UpToDate", "OutOfDate"}),
        accepted_advisory_ids=frozenset(Z1_ADVISORIES),
    )
    result = verify_quote(quote, collateral, now=1740048927, policy=policy)
    assert result.tcb_status == "OutOfDate"
    assert result.advisory_ids == Z1_ADVISORIES
    # one advisory missing from the allowlist is enough to reject
    partial = AppraisalPolicy(
        accepted_tcb_statuses=frozenset({"OutOfDate"}),
        accepted_advisory_ids=frozenset(Z1_ADVISORIES[:2]),
    )
    with pytest.raises(PolicyRejected, match="INTEL-SA-00986"):
        verify_quote(quote, collateral, now=1740048927, policy=partial)


def test_debug_td_is_policy_rejected_even_if_policy_allows_debug(
    tdx_samples_dir: Path, cases: dict[str, dict[str, Any]]
) -> None:
    quote, collateral = _load(tdx_samples_dir, cases["NEG trustee-v4-debug-td"])
    with pytest.raises(PolicyRejected, match="debug mode"):
        verify_quote(quote, collateral, now=1688801098)
    lenient = AppraisalPolicy(allow_debug=True)
    with pytest.raises(PolicyRejected, match="dcap-qvl refuses this whatever the policy"):
        verify_quote(quote, collateral, now=1688801098, policy=lenient)
    # other mismatches are listed next to it
    strict = AppraisalPolicy(accepted_mrtd=[bytes(48)])
    with pytest.raises(PolicyRejected) as info:
        verify_quote(quote, collateral, now=1688801098, policy=strict)
    assert any("MRTD" in r for r in info.value.reasons)
    assert any("debug" in r for r in info.value.reasons)


@pytest.mark.parametrize("offset", [-1, 0])
def test_time_outside_window_is_rejected_and_says_so(
    tdx_samples_dir: Path, cases: dict[str, dict[str, Any]], offset: int
) -> None:
    for case in cases.values():
        quote, collateral = _load(tdx_samples_dir, case)
        start, end = case["window_unix"]
        for now in (start - 1, end + offset + 1, end, 0, 4_000_000_000):
            verdict = check_quote(quote, collateral, now=now)
            assert not verdict.accepted
            assert isinstance(verdict.error, EvidenceInvalid)
            assert verdict.reasons[0].startswith("collateral not valid at"), verdict.reasons


def test_window_start_is_inclusive(p1: bytes, p1_collateral: Collateral) -> None:
    assert check_quote(p1, p1_collateral, now=p1_collateral.not_before).accepted


def test_expected_report_data(p1: bytes, p1_collateral: Collateral) -> None:
    report_data = parse_quote(p1).report_data
    verify_quote(p1, p1_collateral, now=P1_NOW, expected_report_data=report_data)
    wrong = bytes([report_data[0] ^ 1]) + report_data[1:]
    with pytest.raises(BindingMismatch):
        verify_quote(p1, p1_collateral, now=P1_NOW, expected_report_data=wrong)


def _p1_offsets(p1: bytes) -> dict[str, list[int]]:
    quote = parse_quote(p1)
    chain_start = p1.index(b"-----BEGIN CERTIFICATE-----")
    blocks = [i for i in range(len(p1)) if p1.startswith(b"-----BEGIN CERTIFICATE-----", i)]
    auth_len = len(quote.signature_data.qe_auth_data)
    return {
        "header": [0, 1, 2, 3, 4, 7, 8, 10, 12, 20, 28, 40, 47],
        "body": [48, 60, 64, 100, 112, 160, 168, 176, 184, 200, 232, 300, 400, 500, 568, 600, 631],
        "sig_data_len": [632, 633],
        "quote_signature": [636, 660, 699],
        "attestation_key": [700, 740, 763],
        "cert_data_header": [764, 766],
        "qe_report": [770, 800, 834, 900, 1026, 1090, 1153],
        "qe_report_signature": [1154, 1190, 1217],
        "qe_auth_data": [1218, 1220, 1220 + auth_len - 1],
        "nested_header": [1220 + auth_len, 1220 + auth_len + 2],
        # a base64 character in the middle of a line of each certificate (leaf, CA, root)
        "certificate_chain": [chain_start + 100, blocks[1] + 300, blocks[2] + 200, blocks[2] + 600],
    }


def _all_offsets() -> list[tuple[str, int]]:
    quote = (TDX_SAMPLES / P1_QUOTE).read_bytes()
    return [(region, off) for region, offs in _p1_offsets(quote).items() for off in offs]


def _mutate(data: bytes, offset: int) -> bytes:
    byte = data[offset]
    # inside PEM text, stay in the base64 alphabet so that the DER (not the PEM) changes
    in_base64 = chr(byte).isalnum()
    replacement = (ord("C") if byte == ord("B") else ord("B")) if in_base64 else byte ^ 0x01
    return data[:offset] + bytes([replacement]) + data[offset + 1 :]


@pytest.mark.parametrize(("region", "offset"), _all_offsets())
def test_one_byte_change_is_rejected(
    p1: bytes, p1_collateral: Collateral, region: str, offset: int
) -> None:
    assert check_quote(p1, p1_collateral, now=P1_NOW).accepted
    tampered = _mutate(p1[:4936], offset)
    assert tampered != p1[:4936]
    verdict = check_quote(tampered, p1_collateral, now=P1_NOW)
    assert not verdict.accepted, (region, offset)
    assert isinstance(verdict.error, EvidenceInvalid | QuoteFormatError), verdict.error
    with pytest.raises((EvidenceInvalid, QuoteFormatError)):
        verify_quote(tampered, p1_collateral, now=P1_NOW)


def test_chain_must_end_in_the_pinned_root(p1: bytes, p1_collateral: Collateral) -> None:
    with pytest.raises(EvidenceInvalid, match="pinned Intel SGX Root CA"):
        verify_quote(
            _mutate(p1, p1.rindex(b"-----BEGIN CERTIFICATE-----") + 400), p1_collateral, now=P1_NOW
        )


def test_unsafe_root_is_used_and_logged(
    p1: bytes,
    p1_collateral: Collateral,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verifier_module, "_unsafe_roots_warned", set())
    for _ in range(3):
        result = verify_quote(
            p1, p1_collateral, now=P1_NOW, unsafe_root_ca_der=intel_sgx_root_ca_der()
        )
    assert result.tcb_status == "UpToDate"
    assert result.trust_anchor is TrustAnchor.TEST_ROOT  # whatever root it is: trusted by hand
    warned = [r for r in caplog.records if r.getMessage().startswith("tdx.unsafe_root_ca")]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING  # once, not per quote
    assert verify_quote(p1, p1_collateral, now=P1_NOW).trust_anchor is TrustAnchor.VENDOR_ROOT
    with pytest.raises(EvidenceInvalid, match="unsafe root CA"):
        verify_quote(p1, p1_collateral, now=P1_NOW, unsafe_root_ca_der=b"\x30\x03\x02\x01\x00")


def test_collateral_for_another_fmspc_is_rejected(tdx_samples_dir: Path, p1: bytes) -> None:
    other = Collateral.from_file(tdx_samples_dir / "zkdcap/collateral_00806f050000_assembled.json")
    verdict = check_quote(p1, other, now=1740048927)
    assert not verdict.accepted and isinstance(verdict.error, EvidenceInvalid)


# --- TdxVerifier (the attquic Verifier plug-in) --------------------------------------------


def _record(value: bytes, media_type: str = TDX_QUOTE_MEDIA_TYPE, ind: int | None = 4) -> Any:
    try:
        from attquic.cmw import CMWRecord  # type: ignore[attr-defined]
    except ImportError:
        return SimpleNamespace(type=media_type, value=value, ind=ind)
    return CMWRecord(media_type, value, ind)


@pytest.mark.anyio
async def test_tdx_verifier_accepts_bound_quote(p1: bytes, p1_collateral: Collateral) -> None:
    verifier = TdxVerifier(StaticCollateral(p1_collateral))
    binding = SimpleNamespace(report_data=parse_quote(p1).report_data)
    result = await verifier.verify(_record(p1), binding, now=P1_NOW)  # type: ignore[arg-type]
    assert isinstance(result, TdxAttestation) and result.tcb_status == "UpToDate"
    collection = SimpleNamespace(items={"tdx": _record(p1), "other": _record(b"x", "text/plain")})
    result = await verifier.verify(collection, binding, now=P1_NOW)  # type: ignore[arg-type]
    assert result.mrtd == parse_quote(p1).mrtd


@pytest.mark.anyio
async def test_tdx_verifier_rejections(p1: bytes, p1_collateral: Collateral) -> None:
    verifier = TdxVerifier(StaticCollateral(p1_collateral))
    binding = SimpleNamespace(report_data=bytes(64))
    with pytest.raises(BindingMismatch):
        await verifier.verify(_record(p1), binding, now=P1_NOW)  # type: ignore[arg-type]
    with pytest.raises(EvidenceInvalid, match="no TDX quote"):
        await verifier.verify(_record(p1, "text/plain"), binding, now=P1_NOW)  # type: ignore[arg-type]
    with pytest.raises(EvidenceInvalid, match="evidence"):
        await verifier.verify(_record(p1, ind=8), binding, now=P1_NOW)  # type: ignore[arg-type]
    with pytest.raises(QuoteFormatError):
        await verifier.verify(_record(p1[:100]), binding, now=P1_NOW)  # type: ignore[arg-type]
    with pytest.raises(EvidenceInvalid, match="collateral not valid"):
        await verifier.verify(_record(p1), binding, now=P1_NOW + 10)  # type: ignore[arg-type]
