"""The cold verification path's shortcuts give exactly the results of the plain code.

* frozen objects filled by ``attquic.tdx._frozen.build`` equal, attribute for attribute, the
  ones their constructors build (no field missing, none extra, same types);
* the per-collateral window bounds and FMSPC bytes follow the collateral object they were
  computed from (a copy with other dates or another FMSPC gets its own);
* the canonical-PEM shortcut of ``chain_ends_with`` agrees with the whitespace-blind
  comparison for every layout, and never accepts another root;
* the QE report decoded on demand has the layout's values.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import math
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attquic.attestation import TrustAnchor
from attquic.errors import BindingMismatch, EvidenceInvalid
from attquic.tdx._frozen import build
from attquic.tdx.collateral import Collateral, format_time
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.quote import (
    QeReport,
    QuoteHeader,
    QuoteSignatureData,
    TdAttributes,
    TdReportBody,
    TdxQuote,
    _parse_checked,
    _parse_well_formed,
    parse_quote,
)
from attquic.tdx.simulated import SimulatedTdxHierarchy
from attquic.tdx.verifier import QuoteVerdict, TdxAttestation, check_quote, verify_quote

NOW = 1_750_000_000.0
BUILT = (TdReportBody, TdAttributes, QeReport, QuoteSignatureData, QuoteHeader, TdxQuote)


@functools.cache
def _hierarchy() -> SimulatedTdxHierarchy:
    return SimulatedTdxHierarchy.default()


@functools.cache
def _collateral() -> Collateral:
    return Collateral.from_json(_hierarchy().collateral_json(NOW))


def _samples(tdx_samples_dir: Path) -> list[bytes]:
    return [
        (tdx_samples_dir / "phala-dcap-qvl/tdx_quote").read_bytes(),
        (tdx_samples_dir / "phala-dcap-qvl/tdx_quote_outdated").read_bytes(),
        _hierarchy().quote(bytes(range(64))),
        _hierarchy().quote(bytes(range(64)), version=5, v5_body_type=3),
        _hierarchy().quote(bytes(range(64)), version=5, v5_body_type=2),
    ]


def _is_cached(cls: type, name: str) -> bool:
    """A functools.cached_property's value (kept in the instance dict once computed)."""
    return isinstance(getattr(cls, name, None), functools.cached_property)


def _assert_identical(built: Any, constructed: Any, path: str = "quote") -> None:
    """Same class and the very same attributes, recursively through the model's objects."""
    assert type(built) is type(constructed), path
    if not dataclasses.is_dataclass(built):
        assert built == constructed, path
        return
    names = [f.name for f in dataclasses.fields(built)]
    for instance in (built, constructed):
        stored = [name for name in vars(instance) if not _is_cached(type(instance), name)]
        assert stored == names, f"{path}: {stored} != {names}"
    for name in names:
        _assert_identical(getattr(built, name), getattr(constructed, name), f"{path}.{name}")


def test_built_classes_can_be_built() -> None:
    """build() skips __init__: only for dataclasses with an instance dict and no __post_init__."""
    for cls in (*BUILT, TdxAttestation):
        assert dataclasses.is_dataclass(cls)
        assert not hasattr(cls, "__post_init__"), cls
        assert "__slots__" not in vars(cls), cls


def test_build_fills_exactly_the_fields() -> None:
    header = build(
        QuoteHeader,
        {
            "version": 4,
            "attestation_key_type": 2,
            "tee_type": 0x81,
            "reserved": bytes(4),
            "qe_vendor_id": bytes(16),
            "user_data": bytes(20),
        },
    )
    _assert_identical(header, QuoteHeader(4, 2, 0x81, bytes(4), bytes(16), bytes(20)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        header.version = 5  # type: ignore[misc]


def test_hot_parse_builds_what_the_constructors_build(tdx_samples_dir: Path) -> None:
    for sample in _samples(tdx_samples_dir):
        fast = _parse_well_formed(sample)
        assert fast is not None
        _assert_identical(fast, _parse_checked(sample))


def test_qe_report_fields_decode_the_layout(tdx_samples_dir: Path) -> None:
    for sample in _samples(tdx_samples_dir):
        report = parse_quote(sample).signature_data.qe_report
        raw = report.raw
        assert len(raw) == 384
        assert report.cpu_svn == raw[0:16]
        assert report.misc_select == struct.unpack_from("<I", raw, 16)[0]
        assert report.attributes == raw[48:64]
        assert report.mrenclave == raw[64:96]
        assert report.mrsigner == raw[128:160]
        assert report.isv_prod_id == struct.unpack_from("<H", raw, 256)[0]
        assert report.isv_svn == struct.unpack_from("<H", raw, 258)[0]
        assert report.report_data == raw[320:384]
        assert report == QeReport(raw=bytes(raw))  # equality: the bytes


# --- results ---------------------------------------------------------------------------------


def _verified() -> tuple[TdxAttestation, TdxQuote, bytes]:
    report_data = bytes(range(64))
    raw = _hierarchy().quote(report_data)
    result = verify_quote(
        raw,
        _collateral(),
        now=NOW,
        policy=AppraisalPolicy(accepted_tcb_statuses=frozenset({"UpToDate"})),
        expected_report_data=report_data,
        unsafe_root_ca_der=_hierarchy().root_ca_der,
    )
    return result, parse_quote(raw), report_data


def test_attestation_is_what_the_constructor_builds() -> None:
    result, quote, report_data = _verified()
    body = quote.body
    expected = TdxAttestation(
        verified_at=NOW,
        media_type=result.media_type,
        evidence=quote.raw,
        trust_anchor=TrustAnchor.TEST_ROOT,
        tcb_status="UpToDate",
        advisory_ids=(),
        mrtd=body.mrtd,
        rtmrs=body.rtmrs,
        mrconfigid=body.mrconfigid,
        mrowner=body.mrowner,
        mrownerconfig=body.mrownerconfig,
        mrseam=body.mrseam,
        td_attributes=body.td_attributes,
        xfam=body.xfam,
        report_data=report_data,
        fmspc=bytes.fromhex(_collateral().fmspc),
        quote=quote,
        verified_by="dcap-qvl",
    )
    _assert_identical(result, expected, "attestation")
    assert result == expected and hash(result.trust_anchor) == hash(expected.trust_anchor)


def test_check_quote_still_returns_full_verdicts() -> None:
    report_data = bytes(range(64))
    raw = _hierarchy().quote(report_data)
    common: dict[str, Any] = {
        "now": NOW,
        "policy": AppraisalPolicy(accepted_tcb_statuses=frozenset({"UpToDate"})),
        "unsafe_root_ca_der": _hierarchy().root_ca_der,
    }
    accepted = check_quote(raw, _collateral(), expected_report_data=report_data, **common)
    assert isinstance(accepted, QuoteVerdict)
    assert accepted.accepted and accepted.error is None and accepted.reasons == ()
    assert accepted.tcb_status == "UpToDate" and accepted.advisory_ids == ()
    assert accepted.attestation is not None and accepted.quote == parse_quote(raw)
    assert accepted.attestation.report_data == report_data
    refused = check_quote(raw, _collateral(), expected_report_data=bytes(64), **common)
    assert not refused.accepted and isinstance(refused.error, BindingMismatch)
    assert refused.attestation is None and refused.tcb_status == "UpToDate"
    with pytest.raises(BindingMismatch):
        verify_quote(raw, _collateral(), expected_report_data=bytes(64), **common)


# --- per-collateral values -------------------------------------------------------------------

_PIECES = (
    ("TCB info", "tcb_info_issue_date", "tcb_info_next_update"),
    ("QE identity", "qe_identity_issue_date", "qe_identity_next_update"),
    ("PCK CRL", "pck_crl_this_update", "pck_crl_next_update"),
    ("root CA CRL", "root_ca_crl_this_update", "root_ca_crl_next_update"),
)


def _reference_window_problem(collateral: Collateral, now: float) -> str | None:
    """The piece-by-piece rule, written out independently of Collateral."""
    faults = []
    for name, start_field, end_field in _PIECES:
        start, end = getattr(collateral, start_field), getattr(collateral, end_field)
        if not start <= now < end:
            faults.append(
                f"{name} issued {format_time(start)} (in the future)"
                if now < start
                else f"{name} expired {format_time(end)}"
            )
    if not faults:
        return None
    return f"collateral not valid at {format_time(now)}: " + "; ".join(faults)


_TIMES = st.one_of(
    st.floats(NOW - 10 * 86400, NOW + 60 * 86400, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, NOW]),
)


@settings(max_examples=300, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from([f for _, start, end in _PIECES for f in (start, end)]), _TIMES
    ),
    now=_TIMES,
)
def test_window_follows_the_collateral(changes: dict[str, float], now: float) -> None:
    base = _collateral()
    assert base.window_problem(NOW) is None  # computes and keeps base's bounds
    changed = dataclasses.replace(base, **changes)
    for collateral in (changed, base, changed):
        assert collateral.window_problem(now) == _reference_window_problem(collateral, now)


def test_window_edges() -> None:
    collateral = _collateral()
    start, end = collateral.not_before, collateral.not_after
    assert collateral.window_problem(start) is None
    assert collateral.window_problem(end - 0.001) is None
    assert "expired" in (collateral.window_problem(end) or "")
    assert "in the future" in (collateral.window_problem(start - 0.001) or "")
    assert collateral.window_problem(math.nan) == _reference_window_problem(collateral, math.nan)
    with_nan = dataclasses.replace(collateral, pck_crl_this_update=math.nan)
    assert "PCK CRL" in (with_nan.window_problem(NOW) or "")


def test_fmspc_bytes_follow_the_collateral() -> None:
    base = _collateral()
    assert base.fmspc_bytes == bytes.fromhex(base.fmspc)
    other = dataclasses.replace(base, fmspc="00112233AABB")
    assert other.fmspc_bytes == bytes.fromhex("00112233aabb")
    assert base.fmspc_bytes == bytes.fromhex(base.fmspc)
    with pytest.raises(ValueError):
        _ = dataclasses.replace(base, fmspc="not hex").fmspc_bytes


def test_fmspc_of_the_result_is_the_collaterals() -> None:
    result, _, _ = _verified()
    assert result.fmspc == bytes.fromhex(_collateral().fmspc)


# --- the PCK chain's root --------------------------------------------------------------------


def _pem(der: bytes, *, width: int = 64, newline: bytes = b"\n") -> bytes:
    text = base64.b64encode(der)
    lines = [text[i : i + width] for i in range(0, len(text), width)]
    return (
        b"-----BEGIN CERTIFICATE-----"
        + newline
        + newline.join(lines)
        + newline
        + b"-----END CERTIFICATE-----"
        + newline
    )


def _with_chain(quote: TdxQuote, pem: bytes) -> TdxQuote:
    return dataclasses.replace(
        quote, signature_data=dataclasses.replace(quote.signature_data, pck_cert_chain_pem=pem)
    )


@pytest.mark.parametrize(
    "layout",
    [
        {},
        {"width": 76},
        {"newline": b"\r\n"},
        {"width": 64, "newline": b"\n\n"},
    ],
)
def test_chain_root_match_does_not_depend_on_layout(layout: dict[str, Any]) -> None:
    hierarchy = _hierarchy()
    quote = parse_quote(hierarchy.quote(bytes(64)))
    root = hierarchy.root_ca_der
    other_root = root[:-1] + bytes([root[-1] ^ 1])
    leaf = _pem(b"leaf certificate bytes")
    assert _with_chain(quote, leaf + _pem(root, **layout)).chain_ends_with(root)
    assert _with_chain(quote, leaf + _pem(root, **layout)[:-2]).chain_ends_with(root) is (
        layout.get("newline", b"\n") != b"\n"  # the END line cut: no block at all with "\n"
    )
    assert not _with_chain(quote, leaf + _pem(root, **layout)).chain_ends_with(other_root)
    assert not _with_chain(quote, _pem(root, **layout)).chain_ends_with(root)  # one cert only
    assert not _with_chain(quote, _pem(root) + leaf).chain_ends_with(root)  # root not last
    truncated = leaf + _pem(root, **layout).split(b"-----END")[0]
    assert not _with_chain(quote, truncated).chain_ends_with(root)
    longer = _pem(root + b"\x00")
    assert not _with_chain(quote, leaf + longer).chain_ends_with(root)


def test_binding_and_window_still_refuse() -> None:
    hierarchy = _hierarchy()
    raw = hierarchy.quote(bytes(64))
    common: dict[str, Any] = {
        "policy": AppraisalPolicy(accepted_tcb_statuses=frozenset({"UpToDate"})),
        "unsafe_root_ca_der": hierarchy.root_ca_der,
    }
    with pytest.raises(EvidenceInvalid, match="collateral not valid"):
        verify_quote(raw, _collateral(), now=NOW + 400 * 86400, **common)
    with pytest.raises(BindingMismatch):
        verify_quote(raw, _collateral(), now=NOW, expected_report_data=bytes(63) + b"\1", **common)


def test_platform_parts_are_reused_only_for_equal_bytes(tdx_samples_dir: Path) -> None:
    """The hot path keeps the last quote's header and platform parts (attestation key .. PCK
    chain); a quote that differs in any of those bytes gets its own."""
    samples = _samples(tdx_samples_dir)
    base = samples[2]
    quote = parse_quote(base)
    tail_start = len(quote.signed_bytes) + 4 + 64
    variants = [base, *samples]
    for offset in (0, 20, tail_start, tail_start + 64 + 10, tail_start + 64 + 384 + 64 + 3):
        mutated = bytearray(base)
        mutated[offset] ^= 0x01
        variants.append(bytes(mutated))
    variants.append(base[:-5] + b"AAAA" + base[-1:])  # inside the PEM's last line
    for data in variants + variants[::-1] + variants:
        fast = _parse_well_formed(data)
        if fast is None:  # the mutation broke the structure: the checked parser decides
            continue
        _assert_identical(fast, _parse_checked(data))
        assert fast.signature_data.pck_cert_chain_pem in data
        assert fast.signature_data.qe_report.raw in data
    again = parse_quote(base)
    assert again.signature_data.qe_report is parse_quote(base).signature_data.qe_report
