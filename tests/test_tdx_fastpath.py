"""The verification cache and the platform fast path give exactly dcap-qvl's verdict.

Differential standard: for real and simulated quotes, every byte of the signed region, and a
hypothesis-generated set of mutated quotes (any field or byte region, signatures, chain, QE
report, masked fields re-signed), attquic with a WARM cache accepts exactly what dcap-qvl 0.7
accepts, with the same TCB status and advisories, and gives the same verdict as attquic's own
full path. Plus the time dimension (collateral expiry, maximum age, a clock before the entry),
the keys (collateral content, trust anchor), the bounds, and what is never cached (binding,
policy).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import dcap_qvl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from attquic.errors import BindingMismatch, ConfigurationError, EvidenceInvalid, PolicyRejected
from attquic.keyschedule import Binding
from attquic.profile import TDX_QUOTE_MEDIA_TYPE
from attquic.tdx import _sim_pki as pki
from attquic.tdx.collateral import Collateral
from attquic.tdx.intel_root import intel_sgx_root_ca_der
from attquic.tdx.policy import TCB_STATUSES, AppraisalPolicy
from attquic.tdx.quote import parse_quote
from attquic.tdx.simulated import (
    OUT_OF_DATE_ADVISORIES,
    SimulatedCollateral,
    SimulatedTdxAttester,
    SimulatedTdxHierarchy,
    SimulatedTdxWarning,
    SimulationKnobs,
)
from attquic.tdx.verdict_cache import (
    MASKED_BODY_RANGE,
    VerdictCache,
    VerificationCacheSettings,
    masked_quote,
)
from attquic.tdx.verifier import QuoteVerdict, TdxAttestation, TdxVerifier, _outcome

pytestmark = pytest.mark.filterwarnings("ignore", category=SimulatedTdxWarning)

NOW = 1_800_000_000.0
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ALL_ADVISORIES = frozenset(
    {"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986", *OUT_OF_DATE_ADVISORIES}
)
PERMISSIVE = AppraisalPolicy(
    allow_debug=True,
    require_sept_ve_disable=False,
    accepted_tcb_statuses=frozenset(TCB_STATUSES),
    accepted_advisory_ids=ALL_ADVISORIES,
)
"""Accepts whatever DCAP accepts: a verdict of attquic is then DCAP's verdict."""

BIG = VerificationCacheSettings(evidence_entries=100_000, platform_entries=100_000)


def _attester_and_verifier(
    knobs: SimulationKnobs | None = None, **options: bool
) -> tuple[SimulatedTdxAttester, TdxVerifier]:
    """An attester on a fresh simulated platform and a permissive verifier of that platform;
    ``options`` are TdxVerifier's (verification_cache, fast_path, offload_to_thread)."""
    hierarchy = SimulatedTdxHierarchy.default()
    verifier = TdxVerifier(
        SimulatedCollateral(hierarchy),
        PERMISSIVE,
        unsafe_root_ca_der=hierarchy.root_ca_der,
        **options,
    )
    return SimulatedTdxAttester(hierarchy, knobs=knobs or SimulationKnobs()), verifier


"""The differential tests warm one cache with many accepted variants: no eviction there."""

Outcome = tuple[bool, str | None, tuple[str, ...]]
REJECTED: Outcome = (False, None, ())


@dataclass
class Case:
    """One quote, its collateral, trust anchor and time, and a cache warmed with it."""

    name: str
    quote: bytes
    collateral: Collateral
    anchor: bytes | None  # None = the pinned Intel root
    now: float
    cache: VerdictCache
    hierarchy: SimulatedTdxHierarchy | None = None

    @property
    def anchor_der(self) -> bytes:
        return self.anchor if self.anchor is not None else intel_sgx_root_ca_der()

    def resign(self, quote: bytes) -> bytes:
        """``quote`` with a valid attestation-key signature over its (mutated) signed region."""
        assert self.hierarchy is not None
        signed = len(parse_quote(self.quote).signed_bytes)
        signature = pki.sign_raw(self.hierarchy._ak, quote[:signed])
        return quote[: signed + 4] + signature + quote[signed + 68 :]


def dcap_reference(case: Case, quote: bytes) -> Outcome:
    """dcap-qvl itself, on the bytes as given."""
    try:
        if case.anchor is None:
            report = dcap_qvl.verify(quote, case.collateral.qvl, int(case.now))
        else:
            report = dcap_qvl.verify_with_root_ca(
                quote, case.collateral.qvl, case.anchor, int(case.now)
            )
    except ValueError:
        return REJECTED
    return True, str(report.status), tuple(report.advisory_ids)


def attquic_verdict(
    case: Case, quote: bytes, *, cache: VerdictCache | None, now: float | None = None
) -> tuple[Outcome, str | None]:
    """attquic's verdict under the permissive policy, and the path that verified it."""
    outcome = _outcome(
        quote,
        case.collateral,
        now=case.now if now is None else now,
        policy=PERMISSIVE,
        expected_report_data=None,
        unsafe_root_ca_der=case.anchor,
        media_type=TDX_QUOTE_MEDIA_TYPE,
        cache=cache,
        warn_unsafe_root=False,
    )
    if isinstance(outcome, QuoteVerdict):  # _outcome's rejections
        assert not outcome.accepted
        return REJECTED, None
    return (True, outcome.tcb_status, outcome.advisory_ids), outcome.verified_by


def assert_differential(case: Case, quote: bytes) -> str | None:
    """Warm attquic == cold attquic, and warm acceptance == dcap-qvl's; returns the path."""
    warm, path = attquic_verdict(case, quote, cache=case.cache)
    cold, cold_path = attquic_verdict(case, quote, cache=None)
    reference = dcap_reference(case, quote)
    assert warm == cold
    assert cold_path in (None, "dcap-qvl")
    if warm[0]:
        assert reference == warm, (path, reference, warm)
    if not reference[0]:
        assert not warm[0]
    return path


def _simulated(name: str, *, version: int = 4, v5_body_type: int = 3, seed: bytes = b"") -> Case:
    hierarchy = SimulatedTdxHierarchy.default() if not seed else SimulatedTdxHierarchy(seed=seed)
    quote = hierarchy.quote(os.urandom(64), version=version, v5_body_type=v5_body_type)  # type: ignore[arg-type]
    collateral = Collateral.from_json(hierarchy.collateral_json(NOW))
    case = Case(name, quote, collateral, hierarchy.root_ca_der, NOW, VerdictCache(BIG), hierarchy)
    _warm(case)
    return case


def _warm(case: Case) -> None:
    first = attquic_verdict(case, case.quote, cache=case.cache)
    assert first == (dcap_reference(case, case.quote), "dcap-qvl") or not first[0][0]


REAL = {
    # name: (quote, collateral, README time at which dcap-qvl accepts it)
    "P1": ("phala-dcap-qvl/tdx_quote", "phala-dcap-qvl/tdx_quote_collateral.json", 1751624191),
    "Z1": (
        "zkdcap/quote_tdx_00806f050000.dat",
        "zkdcap/collateral_00806f050000_assembled.json",
        1738756623,
    ),
    "G1": (
        "go-tdx-guest/cos-113-tdx-quote.dat",
        "zkdcap/collateral_00806f050000_assembled.json",
        1738756623,
    ),
}
REAL_REJECTED = {
    "N1": (
        "phala-dcap-qvl/tdx_quote_outdated",
        "phala-dcap-qvl/tdx_quote_outdated_collateral.json",
        1772707803,
    ),
    "N3": ("trustee/tdx_quote_4.dat", "go-tdx-guest/collateral_v4_assembled.json", 1687939438),
    "N5": ("zkdcap/quote_v4.dat", "zkdcap/collateral_00806f050000_assembled.json", 1738756623),
}


def _real(samples: Path, name: str, spec: tuple[str, str, int]) -> Case:
    quote_path, collateral_path, now = spec
    case = Case(
        name,
        (samples / quote_path).read_bytes(),
        Collateral.from_file(samples / collateral_path),
        None,
        float(now),
        VerdictCache(BIG),
    )
    _warm(case)
    return case


@pytest.fixture(scope="module")
def real_cases(tdx_samples_dir: Path) -> dict[str, Case]:
    return {name: _real(tdx_samples_dir, name, spec) for name, spec in REAL.items()}


@pytest.fixture(scope="module")
def sim_cases() -> dict[str, Case]:
    return {
        "v4": _simulated("v4"),
        "v5-td15": _simulated("v5-td15", version=5, v5_body_type=3),
        "v5-td10": _simulated("v5-td10", version=5, v5_body_type=2),
    }


# --- the mask, established by experiment --------------------------------------------------------


@pytest.mark.parametrize("name", ["v4", "v5-td15", "v5-td10"])
def test_every_signed_byte_resigned(sim_cases: dict[str, Case], name: str) -> None:
    """Each byte of header and TD report, changed and re-signed: inside MRTD .. REPORTDATA the
    fast path answers and dcap-qvl agrees; outside, the key misses and dcap-qvl decides."""
    case = sim_cases[name]
    parsed = parse_quote(case.quote)
    body_start = len(parsed.signed_bytes) - (648 if parsed.body.tee_tcb_svn2 else 584)
    mask = range(body_start + MASKED_BODY_RANGE[0], body_start + MASKED_BODY_RANGE[1])
    verdict_changed = 0
    for offset in range(len(parsed.signed_bytes)):
        mutated = bytearray(case.quote)
        mutated[offset] ^= 0x5A
        quote = case.resign(bytes(mutated))
        path = assert_differential(case, quote)
        if offset in mask:
            assert path == "fast-path", offset
        else:
            assert path in (None, "dcap-qvl"), offset
            verdict_changed += dcap_reference(case, quote) != dcap_reference(case, case.quote)
    assert verdict_changed > 50  # the unmasked bytes are evaluated, not just keyed


def test_the_mask_is_exactly_the_listed_fields(sim_cases: dict[str, Case]) -> None:
    case = sim_cases["v4"]
    parsed = parse_quote(case.quote)
    masked = masked_quote(parsed)
    differing = [i for i, (a, b) in enumerate(zip(masked, parsed.raw, strict=True)) if a != b]
    body = parsed.body
    listed = b"".join([body.mrtd, body.mrconfigid, body.mrowner, body.mrownerconfig, *body.rtmrs])
    assert parsed.raw[48 + 136 : 48 + 584] == listed + body.report_data
    signature_at = len(parsed.signed_bytes) + 4
    assert parsed.raw[signature_at : signature_at + 64] == parsed.signature_data.signature
    allowed = set(range(48 + 136, 48 + 584)) | set(range(signature_at, signature_at + 64))
    assert set(differing) <= allowed
    assert len(masked) == len(parsed.raw)


# --- differential: hypothesis-generated mutations ------------------------------------------------


def _regions(quote: bytes) -> dict[str, tuple[int, int]]:
    parsed = parse_quote(quote)
    signed = len(parsed.signed_bytes)
    body = signed - (648 if parsed.body.tee_tcb_svn2 else 584)
    sig = signed + 4
    qe = sig + 64 + 64 + 6
    auth_len = qe + 384 + 64
    chain_header = auth_len + 2 + len(parsed.signature_data.qe_auth_data)
    return {
        "header": (0, 48),
        "v5 descriptor": (48, body),
        "tee_tcb_svn": (body, body + 16),
        "mrseam/mrsignerseam/seam_attributes": (body + 16, body + 120),
        "td_attributes/xfam": (body + 120, body + 136),
        "masked measurements": (body + 136, body + 520),
        "masked report_data": (body + 520, body + 584),
        "td 1.5 extra": (body + 584, signed),
        "signature data length": (signed, sig),
        "signature": (sig, sig + 64),
        "attestation key": (sig + 64, sig + 128),
        "certification data header": (sig + 128, qe),
        "qe report": (qe, qe + 384),
        "qe report signature": (qe + 384, auth_len),
        "qe auth data": (auth_len, chain_header),
        "pck chain header": (chain_header, chain_header + 6),
        "pck chain": (chain_header + 6, len(parsed.raw)),
    }


@st.composite
def mutations(draw: st.DrawFn, quote: bytes, *, resign_allowed: bool) -> tuple[bytes, bool]:
    regions = {k: v for k, v in _regions(quote).items() if v[1] > v[0]}
    name = draw(st.sampled_from(sorted(regions)))
    start, end = regions[name]
    data = bytearray(quote)
    for _ in range(draw(st.integers(1, 4))):
        offset = draw(st.integers(start, end - 1))
        data[offset] = draw(st.integers(0, 255).filter(lambda b, o=offset: b != quote[o]))
    if draw(st.integers(0, 3)) == 0:
        tail = draw(st.sampled_from(["truncate", "append"]))
        if tail == "truncate":
            del data[draw(st.integers(1, len(data) - 1)) :]
        else:
            data += draw(st.binary(min_size=1, max_size=16))
    resign = resign_allowed and draw(st.integers(0, 3)) > 0
    return bytes(data), resign


SIGNATURE_EDITS = ["r=0", "s=0", "r=n", "s=n", "r=n+1", "high-s", "max", "swap"]


def _edit_signature(quote: bytes, edit: str) -> bytes:
    signed = len(parse_quote(quote).signed_bytes)
    at = signed + 4
    r = int.from_bytes(quote[at : at + 32], "big")
    s = int.from_bytes(quote[at + 32 : at + 64], "big")
    new_r, new_s = {
        "r=0": (0, s),
        "s=0": (r, 0),
        "r=n": (P256_ORDER, s),
        "s=n": (r, P256_ORDER),
        "high-s": (r, P256_ORDER - s),
        "r=n+1": (P256_ORDER + 1, s),
        "max": (2**256 - 1, s),
        "swap": (s, r),
    }[edit]
    signature = new_r.to_bytes(32, "big") + new_s.to_bytes(32, "big")
    return quote[:at] + signature + quote[at + 64 :]


DIFFERENTIAL = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize("name", ["v4", "v5-td15"])
@DIFFERENTIAL
@given(data=st.data())
def test_differential_simulated(sim_cases: dict[str, Case], name: str, data: st.DataObject) -> None:
    case = sim_cases[name]
    quote, resign = data.draw(mutations(case.quote, resign_allowed=True))
    if resign and len(quote) > len(parse_quote(case.quote).signed_bytes) + 68:
        quote = case.resign(quote)
    event(f"verified by {assert_differential(case, quote)}")


@pytest.mark.parametrize("name", ["v4", "v5-td15", "v5-td10"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masked=st.binary(min_size=448, max_size=448))
def test_differential_masked_fields_resigned(
    sim_cases: dict[str, Case], name: str, masked: bytes
) -> None:
    """Any MRTD .. REPORTDATA content, validly signed: the fast path, with dcap-qvl's verdict."""
    case = sim_cases[name]
    parsed = parse_quote(case.quote)
    start = len(parsed.signed_bytes) - (648 if parsed.body.tee_tcb_svn2 else 584) + 136
    quote = case.resign(case.quote[:start] + masked + case.quote[start + 448 :])
    assert assert_differential(case, quote) in ("fast-path", "cache")


@pytest.mark.parametrize("name", sorted(REAL))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_differential_real(real_cases: dict[str, Case], name: str, data: st.DataObject) -> None:
    case = real_cases[name]
    quote, _ = data.draw(mutations(case.quote, resign_allowed=False))
    event(f"verified by {assert_differential(case, quote)}")


@pytest.mark.parametrize("edit", SIGNATURE_EDITS)
def test_differential_signature_edge_values(
    sim_cases: dict[str, Case], real_cases: dict[str, Case], edit: str
) -> None:
    """Out-of-range r/s, the malleated (high-s) signature: OpenSSL and dcap-qvl agree."""
    for case in [*sim_cases.values(), *real_cases.values()]:
        path = assert_differential(case, _edit_signature(case.quote, edit))
        if edit == "high-s":  # still a valid ECDSA signature: the fast path may answer
            assert path == "fast-path" and dcap_reference(case, case.quote)[0]
        else:
            assert path is None


def test_real_samples_warm(real_cases: dict[str, Case]) -> None:
    """Real quotes: the identical quote comes from the cache with dcap-qvl's verdict."""
    for case in real_cases.values():
        reference = dcap_reference(case, case.quote)
        assert reference[0], case.name
        assert attquic_verdict(case, case.quote, cache=case.cache) == (reference, "cache")
        # The trailing padding is not part of the evidence: still the same entry.
        assert attquic_verdict(case, case.quote + b"\x00" * 9, cache=case.cache)[1] == "cache"


def test_real_rejected_samples_are_never_remembered(tdx_samples_dir: Path) -> None:
    for name, spec in REAL_REJECTED.items():
        case = _real(tdx_samples_dir, name, spec)
        for _ in range(2):
            assert attquic_verdict(case, case.quote, cache=case.cache) == (REJECTED, None)
        assert len(case.cache) == 0
        assert case.cache.hits["dcap-qvl"] == 0


def test_simulated_platform_fast_path_per_fresh_quote(sim_cases: dict[str, Case]) -> None:
    """Fresh REPORTDATA and other measurements per quote: each takes the fast path."""
    case = sim_cases["v4"]
    assert case.hierarchy is not None
    for i in range(5):
        quote = case.hierarchy.quote(os.urandom(64), rtmrs=[bytes([i]) * 48] * 4)
        assert attquic_verdict(case, quote, cache=case.cache) == (
            dcap_reference(case, quote),
            "fast-path",
        )
        assert attquic_verdict(case, quote, cache=case.cache)[1] == "cache"


def test_other_platform_and_platform_changes_miss(sim_cases: dict[str, Case]) -> None:
    case = sim_cases["v4"]
    assert case.hierarchy is not None
    other = SimulatedTdxHierarchy(seed=b"another platform")
    other_case = Case(
        "other",
        other.quote(os.urandom(64)),
        case.collateral,
        other.root_ca_der,
        NOW,
        case.cache,
        other,
    )
    # Another platform's quote (other PCK chain, AK, QE report): never the fast path.
    assert attquic_verdict(other_case, other_case.quote, cache=case.cache)[1] in (None, "dcap-qvl")
    # Same platform, out-of-date TDX module SVN, debug TD, other XFAM: the key differs.
    for quote in (
        case.hierarchy.quote(os.urandom(64), knobs=SimulationKnobs(out_of_date=True)),
        case.hierarchy.quote(os.urandom(64), knobs=SimulationKnobs(debug=True)),
        case.hierarchy.quote(os.urandom(64), xfam=bytes.fromhex("e702060000000000")),
    ):
        outcome, path = attquic_verdict(case, quote, cache=case.cache)
        assert path in (None, "dcap-qvl") and outcome == dcap_reference(case, quote)


# --- the time dimension ------------------------------------------------------------------------


def test_entries_end_with_the_collateral() -> None:
    case = _simulated("time")
    case.cache = VerdictCache(VerificationCacheSettings(max_age=10**8))
    _warm(case)
    assert case.hierarchy is not None
    fresh = case.hierarchy.quote(os.urandom(64))
    end = case.collateral.not_after
    assert attquic_verdict(case, fresh, cache=case.cache, now=end - 1)[1] == "fast-path"
    assert attquic_verdict(case, case.quote, cache=case.cache, now=end - 1)[1] == "cache"
    assert len(case.cache) == 3
    # From nextUpdate on, no entry answers (the cache's own bound, whatever checks run first),
    # and the expired entries are dropped; the full path rejects the stale collateral.
    for quote in (fresh, case.quote, case.hierarchy.quote(os.urandom(64))):
        assert case.cache.lookup(parse_quote(quote), case.collateral, case.anchor_der, end) is None
        assert attquic_verdict(case, quote, cache=case.cache, now=end) == (REJECTED, None)
        assert dcap_reference(case, quote) == dcap_reference(case, case.quote)
    assert len(case.cache) == 0
    assert not dcap_qvl_accepts_at(case, end + 86400)


def dcap_qvl_accepts_at(case: Case, now: float) -> bool:
    return dcap_reference(
        Case(case.name, case.quote, case.collateral, case.anchor, now, case.cache), case.quote
    )[0]


def test_entries_end_at_max_age_and_not_before_verification() -> None:
    case = _simulated("age")
    case.cache = VerdictCache(VerificationCacheSettings(max_age=60))
    _warm(case)
    assert case.hierarchy is not None
    fresh = case.hierarchy.quote(os.urandom(64))
    assert attquic_verdict(case, case.quote, cache=case.cache, now=NOW + 59)[1] == "cache"
    # Before the verification time (a clock stepped back): full path.
    assert attquic_verdict(case, fresh, cache=case.cache, now=NOW - 1)[1] == "dcap-qvl"
    # At max age: full path again, which re-remembers at the new time.
    assert attquic_verdict(case, fresh, cache=case.cache, now=NOW + 60)[1] == "dcap-qvl"
    assert attquic_verdict(case, case.quote, cache=case.cache, now=NOW + 61)[1] == "fast-path"


def test_entry_lifetime_is_bounded_by_every_certificate(real_cases: dict[str, Case]) -> None:
    from cryptography import x509

    for case in real_cases.values():
        parsed = parse_quote(case.quote)
        cache = VerdictCache(VerificationCacheSettings(max_age=10**9))
        cache.remember(parsed, case.collateral, case.anchor_der, case.now, _verdict(case))
        entries = list(cache._evidence.values()) + list(cache._platforms.values())
        assert len(entries) == 2
        qvl = case.collateral.qvl
        pems = qvl.pck_crl_issuer_chain + qvl.tcb_info_issuer_chain + qvl.qe_identity_issuer_chain
        certs = x509.load_pem_x509_certificates(pems.encode())
        certs += [x509.load_der_x509_certificate(der) for der in parsed.pck_chain_der]
        bound = min(
            [c.not_valid_after_utc.timestamp() for c in certs] + [case.collateral.not_after]
        )
        assert all(entry.usable_until == bound for entry in entries)


def _verdict(case: Case) -> Any:
    from attquic.tdx.verdict_cache import DcapVerdict

    ok, status, advisories = dcap_reference(case, case.quote)
    assert ok and status is not None
    return DcapVerdict(status, advisories)


# --- the keys: collateral content and trust anchor ---------------------------------------------


def test_collateral_content_and_anchor_are_part_of_the_key() -> None:
    case = _simulated("keys")
    assert case.hierarchy is not None
    parsed = parse_quote(case.quote)
    # Same content, another object: still a hit (the key is the content digest).
    same = Collateral.from_json(case.collateral.to_json())
    assert case.cache.lookup(parsed, same, case.anchor_der, NOW) is not None
    # Other collateral (issued an hour later; or with the PCK certificate revoked): a miss.
    later = Collateral.from_json(case.hierarchy.collateral_json(NOW + 3600))
    assert case.cache.lookup(parsed, later, case.anchor_der, NOW + 3600) is None
    revoked = Collateral.from_json(
        case.hierarchy.collateral_json(NOW, knobs=SimulationKnobs(revoked=True))
    )
    assert case.cache.lookup(parsed, revoked, case.anchor_der, NOW) is None
    outcome, path = attquic_verdict(
        Case("revoked", case.quote, revoked, case.anchor, NOW, case.cache),
        case.quote,
        cache=case.cache,
    )
    assert (outcome, path) == (REJECTED, None)
    # Another trust anchor: a miss.
    other_root = SimulatedTdxHierarchy(seed=b"other root").root_ca_der
    assert case.cache.lookup(parsed, case.collateral, other_root, NOW) is None


# --- bounds and switches -----------------------------------------------------------------------


def test_bounded_lru() -> None:
    hierarchy = SimulatedTdxHierarchy.default()
    collateral = Collateral.from_json(hierarchy.collateral_json(NOW))
    cache = VerdictCache(VerificationCacheSettings(evidence_entries=3, platform_entries=2))
    platforms = [hierarchy] + [SimulatedTdxHierarchy(seed=bytes([i]) * 8) for i in range(3)]
    from attquic.tdx.verdict_cache import DcapVerdict

    quotes = [parse_quote(p.quote(os.urandom(64))) for p in platforms for _ in range(2)]
    for quote in quotes:
        anchor = quote.pck_chain_der[-1]
        cache.remember(quote, collateral, anchor, NOW, DcapVerdict("UpToDate", ()))
    assert len(cache._evidence) == 3 and len(cache._platforms) == 2
    assert len(cache) == 5
    cache.clear()
    assert len(cache) == 0


def test_settings_are_validated() -> None:
    for bad in (
        {"evidence_entries": 0},
        {"platform_entries": -1},
        {"max_age": 0},
        {"max_age": float("nan")},
        {"evidence_entries": True},
        {"max_age": "1"},
    ):
        with pytest.raises(ConfigurationError):
            VerificationCacheSettings(**bad)  # type: ignore[arg-type]


def test_switches() -> None:
    case = _simulated("switches")
    assert case.hierarchy is not None
    fresh = case.hierarchy.quote(os.urandom(64))
    only_cache = VerdictCache(evidence=True, platform=False)
    only_fast = VerdictCache(evidence=False, platform=True)
    neither = VerdictCache(evidence=False, platform=False)
    for cache in (only_cache, only_fast, neither):
        assert attquic_verdict(case, case.quote, cache=cache)[1] == "dcap-qvl"
    assert attquic_verdict(case, case.quote, cache=only_cache)[1] == "cache"
    assert attquic_verdict(case, fresh, cache=only_cache)[1] == "dcap-qvl"
    assert attquic_verdict(case, case.quote, cache=only_fast)[1] == "fast-path"
    assert attquic_verdict(case, fresh, cache=only_fast)[1] == "fast-path"
    assert attquic_verdict(case, case.quote, cache=neither)[1] == "dcap-qvl"
    assert len(neither) == 0 and not neither.enabled


# --- TdxVerifier: binding and policy are never cached ------------------------------------------


@pytest.mark.anyio
async def test_tdx_verifier_paths_binding_and_policy() -> None:
    attester, verifier = _attester_and_verifier()
    paths = []
    first_binding = Binding("sha384", os.urandom(48), os.urandom(48))
    first = await attester.attest(first_binding)
    for cmw, binding in [(first, first_binding), (first, first_binding)] + [
        (await attester.attest(b), b)
        for b in (Binding("sha384", os.urandom(48), os.urandom(48)) for _ in range(2))
    ]:
        result = await verifier.verify(cmw, binding, now=NOW)
        assert isinstance(result, TdxAttestation) and result.tcb_status == "UpToDate"
        paths.append(result.verified_by)
    assert paths == ["dcap-qvl", "cache", "fast-path", "fast-path"]
    # A replayed quote on another connection: the cache answers DCAP's part, the binding fails.
    with pytest.raises(BindingMismatch):
        await verifier.verify(first, Binding("sha384", os.urandom(48), os.urandom(48)), now=NOW)
    # A policy change applies at once, also to remembered quotes.
    verifier.policy = AppraisalPolicy(accepted_mrtd=(bytes(48),))
    with pytest.raises(PolicyRejected):
        await verifier.verify(first, first_binding, now=NOW)
    assert verifier.cache.hits == {"dcap-qvl": 1, "cache": 3, "fast-path": 2}


@pytest.mark.anyio
async def test_tdx_verifier_cold_when_switched_off() -> None:
    attester, verifier = _attester_and_verifier(verification_cache=False, fast_path=False)
    binding = Binding("sha384", os.urandom(48), os.urandom(48))
    cmw = await attester.attest(binding)
    for _ in range(3):
        assert (await verifier.verify(cmw, binding, now=NOW)).verified_by == "dcap-qvl"
    assert len(verifier.cache) == 0


@pytest.mark.anyio
async def test_tdx_verifier_offloaded_shares_the_cache() -> None:
    attester, verifier = _attester_and_verifier(offload_to_thread=True)
    bindings = [Binding("sha384", os.urandom(48), os.urandom(48)) for _ in range(3)]
    paths = [
        (await verifier.verify(await attester.attest(b), b, now=NOW)).verified_by for b in bindings
    ]
    assert paths == ["dcap-qvl", "fast-path", "fast-path"]


def test_masked_digest_is_stable_across_report_data(sim_cases: dict[str, Case]) -> None:
    case = sim_cases["v5-td15"]
    assert case.hierarchy is not None
    digests = {
        hashlib.sha256(
            masked_quote(parse_quote(case.hierarchy.quote(os.urandom(64), version=5)))
        ).hexdigest()
        for _ in range(3)
    }
    assert len(digests) == 1


# --- over real UDP ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.network
async def test_over_udp_later_connections_take_the_fast_path() -> None:
    """One client verifier, several connections to one server (each with a fresh quote), and
    a server verifying several attested clients: the first pays dcap-qvl, the rest the fast
    path; a replayed quote is still a binding mismatch."""
    from channel_helpers import (
        EchoApp,
        RecordingAttester,
        attestation,
        connect_local,
        default_attester,
        echo_once,
        rejected,
        running_server,
        simulated_verifier,
    )

    import attquic

    client_verifier = simulated_verifier()
    server_verifier = simulated_verifier()
    app = EchoApp()
    server_config = attestation(attester=default_attester(), verifier=server_verifier)
    client_config = attestation(attester=default_attester(), verifier=client_verifier)
    async with running_server(server_config, app) as server:
        seen = []
        for i in range(3):
            async with connect_local(server.port, client_config) as connection:
                assert await echo_once(connection, b"x%d" % i) == b"x%d" % i
                result = connection.peer_attestation
                assert isinstance(result, TdxAttestation)
                seen.append(result.verified_by)
        assert seen == ["dcap-qvl", "fast-path", "fast-path"]
        server_seen = [c.peer_attestation.verified_by for c in app.connections]  # type: ignore[union-attr]
        assert server_seen == ["dcap-qvl", "fast-path", "fast-path"]

    replaying = RecordingAttester(default_attester(), replay_first=True)
    async with running_server(attestation(attester=replaying), EchoApp()) as server:
        async with connect_local(server.port, client_config) as connection:
            assert connection.peer_attestation.verified_by == "fast-path"  # type: ignore[union-attr]
        closed = await rejected(server.port, client_config)
    assert closed.code == attquic.CloseCode.BINDING_MISMATCH
    assert client_verifier.cache.hits["cache"] >= 1


@pytest.mark.anyio
@pytest.mark.parametrize("offload", [False, True])
async def test_concurrent_identical_evidence_runs_dcap_once(offload: bool) -> None:
    """One batched quote reaching many connections at once: dcap-qvl runs once, inline or in
    worker threads; every connection still gets its own binding check."""
    attester, verifier = _attester_and_verifier(offload_to_thread=offload, fast_path=False)
    binding = Binding("sha384", os.urandom(48), os.urandom(48))
    cmw = await attester.attest(binding)
    other = Binding("sha384", os.urandom(48), os.urandom(48))
    results: list[object] = []

    async def one(expected: Binding) -> None:
        try:
            results.append((await verifier.verify(cmw, expected, now=NOW)).verified_by)
        except BindingMismatch as exc:
            results.append(exc)

    async with anyio.create_task_group() as group:
        for i in range(12):
            group.start_soon(one, other if i == 5 else binding)
    assert verifier.cache.hits["dcap-qvl"] == 1
    assert sorted(r for r in results if isinstance(r, str)) == ["cache"] * 10 + ["dcap-qvl"]
    assert sum(isinstance(r, BindingMismatch) for r in results) == 1
    assert verifier._in_flight == {}


@pytest.mark.anyio
async def test_offloaded_leader_failure_wakes_the_others() -> None:
    attester, verifier = _attester_and_verifier(
        knobs=SimulationKnobs(bad_quote_signature=True), offload_to_thread=True
    )
    binding = Binding("sha384", os.urandom(48), os.urandom(48))
    cmw = await attester.attest(binding)
    failures: list[Exception] = []

    async def one() -> None:
        try:
            await verifier.verify(cmw, binding, now=NOW)
        except EvidenceInvalid as exc:
            failures.append(exc)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(one)
    assert len(failures) == 4 and verifier._in_flight == {} and len(verifier.cache) == 0


def test_a_pck_chain_in_the_collateral_bounds_the_entry_too() -> None:
    """dcap-qvl uses a collateral's own ``pck_certificate_chain`` instead of the quote's (its
    Python binding does not expose it): its expiry bounds the entry as well."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from attquic.tdx.verdict_cache import DcapVerdict

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "short-lived")])
    expires = datetime.datetime.fromtimestamp(NOW + 100, datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(expires - datetime.timedelta(days=1))
        .not_valid_after(expires)
        .sign(key, hashes.SHA256())
    )
    hierarchy = SimulatedTdxHierarchy.default()
    fields = json.loads(hierarchy.collateral_json(NOW))
    fields["pck_certificate_chain"] = certificate.public_bytes(serialization.Encoding.PEM).decode()
    with_chain = Collateral.from_json(json.dumps(fields))
    quote = parse_quote(hierarchy.quote(os.urandom(64)))
    cache = VerdictCache()
    cache.remember(quote, with_chain, hierarchy.root_ca_der, NOW, DcapVerdict("UpToDate", ()))
    assert cache.lookup(quote, with_chain, hierarchy.root_ca_der, NOW + 99) is not None
    assert cache.lookup(quote, with_chain, hierarchy.root_ca_der, NOW + 100) is None
