"""Full DCAP verification of TDX quotes (dcap-qvl), channel binding, and appraisal.

The order of checks, and what each failure raises:

1. structure (:func:`~attquic.tdx.quote.parse_quote`): :class:`~attquic.errors.QuoteFormatError`;
2. collateral window (every piece valid at ``now``): :class:`~attquic.errors.EvidenceInvalid`
   "collateral not valid at <time>: ...";
3. the quote's PCK chain must end in the trust anchor (the pinned Intel SGX Root CA, or the
   loudly named ``unsafe_root_ca_der``): EvidenceInvalid;
4. DCAP (dcap-qvl): root CA CRL, TCB-info and QE-identity signatures and chains, PCK chain and
   PCK CRL, QE report signature, QE report-data binding of the attestation key, quote
   signature, QE identity, platform and TDX-module TCB level: EvidenceInvalid with dcap-qvl's
   reason. dcap-qvl 0.7 also refuses, *after* all signature and TCB checks passed, TDs whose
   attributes are unsafe (debug, no SEPT_VE_DISABLE, reserved bits, migration...) or whose
   MRSERVICETD is not zero; attquic reports those as :class:`~attquic.errors.PolicyRejected`
   (the evidence is authentic, its content is not acceptable), listing the policy's other
   mismatches too;
5. REPORTDATA equals the expected value (constant time): :class:`~attquic.errors.BindingMismatch`;
6. the :class:`~attquic.tdx.policy.AppraisalPolicy`: PolicyRejected with every mismatch.

:func:`verify_quote` raises; :func:`check_quote` returns a :class:`QuoteVerdict` instead (CLI).
Both always run dcap-qvl in full. :class:`TdxVerifier` plugs all this into attquic's
:class:`~attquic.attestation.Verifier` interface, on the event loop by default, and replaces
step 4 by a remembered dcap-qvl verdict when one proves the quote
(:mod:`attquic.tdx.verdict_cache`: the verification cache for identical evidence and the
platform fast path); steps 1-3, 5 and 6 run for every quote whatever path step 4 took.

Every accepted result names its trust anchor (:class:`~attquic.attestation.TrustAnchor`):
Intel's pinned root, or a test root trusted through ``unsafe_root_ca_der`` (which logs one
warning per process and root).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread
import dcap_qvl

from attquic._reraise import fresh_copy
from attquic.attestation import HardwareAttestation, TrustAnchor
from attquic.cmw.model import CMWRecord
from attquic.errors import (
    AttestationError,
    BindingMismatch,
    EvidenceInvalid,
    PolicyRejected,
    QuoteFormatError,
)
from attquic.logs import get_logger
from attquic.profile import TDX_QUOTE_MEDIA_TYPE
from attquic.tdx._frozen import build
from attquic.tdx.collateral import Collateral, CollateralSource, format_time
from attquic.tdx.intel_root import intel_sgx_root_ca_der
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.quote import TdAttributes, TdxQuote, parse_quote
from attquic.tdx.verdict_cache import (
    DcapVerdict,
    VerdictCache,
    VerificationCacheSettings,
    VerifiedBy,
)

if TYPE_CHECKING:
    from attquic.keyschedule import Binding

__all__ = [
    "DEFAULT_POLICY",
    "QuoteVerdict",
    "TdxAttestation",
    "TdxVerifier",
    "VerificationCacheSettings",
    "VerifiedBy",
    "check_quote",
    "verify_quote",
]

_log = get_logger("attquic.tdx")

DEFAULT_POLICY: Final = AppraisalPolicy()
"""Production defaults: UpToDate only, no advisories, no debug, SEPT_VE_DISABLE required."""

_EVIDENCE_INDICATOR: Final = 4
_MAX_CMW_DEPTH: Final = 8

# dcap-qvl 0.7 messages for attribute checks it runs after every signature and TCB check.
_ENGINE_POLICY_REASONS: Final = {
    "Debug mode is enabled": "TD is in debug mode (TDATTRIBUTES.DEBUG is set)",
    "SEPT_VE_DISABLE is not enabled": "TDATTRIBUTES.SEPT_VE_DISABLE is not set",
    "TD profiling is enabled": "TD profiling is enabled (TDATTRIBUTES)",
    "SERVTD_EXT is enabled": "TDATTRIBUTES.SERVTD_EXT is set",
    "TD migration is enabled": "TD migration is enabled (TDATTRIBUTES.MIGRATABLE)",
    "Reserved bits in TD attributes are set": "reserved TDATTRIBUTES bits are set",
    "Invalid MR service TD": "MRSERVICETD is not zero",
}
_WINDOW_MARKERS: Final = ("in the future", "Expired", "expired", "NotValidYet")


@dataclass(frozen=True)
class TdxAttestation(HardwareAttestation):
    """An accepted TDX quote: what the application may rely on, as typed data."""

    tcb_status: str
    """Intel TCB status of platform, TDX module and QE together (e.g. ``UpToDate``)."""
    advisory_ids: tuple[str, ...]
    mrtd: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    mrseam: bytes
    td_attributes: TdAttributes
    xfam: bytes
    report_data: bytes
    fmspc: bytes
    quote: TdxQuote = field(repr=False)
    verified_by: VerifiedBy = "dcap-qvl"
    """How DCAP's verdict was obtained: ``dcap-qvl`` (full verification), ``fast-path`` (a
    remembered platform verdict plus this quote's signature check) or ``cache`` (these exact
    quote bytes were verified before). Binding and policy were checked for this quote anyway."""


@dataclass(frozen=True)
class QuoteVerdict:
    """The outcome of :func:`check_quote`: accepted or not, and every reason why not."""

    accepted: bool
    reasons: tuple[str, ...]
    """Empty when accepted."""
    tcb_status: str | None
    """``None`` when DCAP did not get as far as a TCB status."""
    advisory_ids: tuple[str, ...]
    quote: TdxQuote | None
    """``None`` when the bytes are not a well-formed quote."""
    attestation: TdxAttestation | None
    error: AttestationError | QuoteFormatError | None = field(default=None, repr=False)
    """The exception :func:`verify_quote` raises for this verdict."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (hex for bytes)."""
        body = self.quote.body if self.quote is not None else None
        return {
            "accepted": self.accepted,
            "tcb_status": self.tcb_status,
            "advisory_ids": list(self.advisory_ids),
            "mrtd": body.mrtd.hex() if body else None,
            "rtmrs": [r.hex() for r in body.rtmrs] if body else None,
            "report_data": body.report_data.hex() if body else None,
            "reasons": list(self.reasons),
            "error": type(self.error).__name__ if self.error is not None else None,
        }


def verify_quote(
    quote: bytes | TdxQuote,
    collateral: Collateral,
    *,
    now: float,
    policy: AppraisalPolicy = DEFAULT_POLICY,
    expected_report_data: bytes | None = None,
    unsafe_root_ca_der: bytes | None = None,
    media_type: str = TDX_QUOTE_MEDIA_TYPE,
) -> TdxAttestation:
    """Verify ``quote`` completely at ``now`` and appraise it; return the typed result.

    ``expected_report_data`` (64 bytes) is compared in constant time with REPORTDATA; leave it
    ``None`` only when the caller checks the binding itself. ``unsafe_root_ca_der`` replaces the
    pinned Intel SGX Root CA as trust anchor: for simulated TDX hierarchies only, never in
    production (a warning is logged once per process and root).

    Raises QuoteFormatError, EvidenceInvalid, BindingMismatch or PolicyRejected.
    """
    outcome = _outcome(
        quote,
        collateral,
        now=now,
        policy=policy,
        expected_report_data=expected_report_data,
        unsafe_root_ca_der=unsafe_root_ca_der,
        media_type=media_type,
        cache=None,
    )
    return _accepted_or_raise(outcome)


def _accepted_or_raise(outcome: TdxAttestation | QuoteVerdict) -> TdxAttestation:
    if isinstance(outcome, QuoteVerdict):
        assert outcome.error is not None  # _outcome returns a QuoteVerdict for rejections only
        # a copy: the verdict keeps the original, which a raise would tie to this frame (cycle)
        raise fresh_copy(outcome.error)
    return outcome


def check_quote(
    quote: bytes | TdxQuote,
    collateral: Collateral,
    *,
    now: float,
    policy: AppraisalPolicy = DEFAULT_POLICY,
    expected_report_data: bytes | None = None,
    unsafe_root_ca_der: bytes | None = None,
    media_type: str = TDX_QUOTE_MEDIA_TYPE,
) -> QuoteVerdict:
    """Like :func:`verify_quote`, but return a :class:`QuoteVerdict` instead of raising."""
    outcome = _outcome(
        quote,
        collateral,
        now=now,
        policy=policy,
        expected_report_data=expected_report_data,
        unsafe_root_ca_der=unsafe_root_ca_der,
        media_type=media_type,
        cache=None,
    )
    if isinstance(outcome, QuoteVerdict):
        return outcome
    return QuoteVerdict(True, (), outcome.tcb_status, outcome.advisory_ids, outcome.quote, outcome)


def _outcome(
    quote: bytes | TdxQuote,
    collateral: Collateral,
    *,
    now: float,
    policy: AppraisalPolicy,
    expected_report_data: bytes | None,
    unsafe_root_ca_der: bytes | None,
    media_type: str,
    cache: VerdictCache | None,
    warn_unsafe_root: bool = True,
) -> TdxAttestation | QuoteVerdict:
    """The verification: the result for an accepted quote (no verdict object built: only
    :func:`check_quote` needs one), or the rejection as a :class:`QuoteVerdict`. DCAP's verdict
    comes from ``cache`` when it has a proof of it, else from dcap-qvl."""
    try:
        parsed = quote if isinstance(quote, TdxQuote) else parse_quote(quote)
    except QuoteFormatError as exc:
        return _rejected(None, exc)
    try:
        root_der = _trust_anchor(parsed, unsafe_root_ca_der, warn=warn_unsafe_root)
    except (EvidenceInvalid, QuoteFormatError) as exc:
        return _rejected(parsed, exc)
    window_problem = collateral.window_problem(now)
    if window_problem is not None:
        return _rejected(parsed, EvidenceInvalid(window_problem))
    remembered = cache.lookup(parsed, collateral, root_der, now) if cache is not None else None
    if remembered is not None:
        dcap_verdict, verified_by = remembered
        status, advisories = dcap_verdict.tcb_status, dcap_verdict.advisory_ids
    else:
        outcome = _run_dcap(
            parsed, collateral, now, root_der, unsafe_root_ca_der, policy, expected_report_data
        )
        if isinstance(outcome, QuoteVerdict):
            return outcome
        (status, advisories), verified_by = outcome, "dcap-qvl"
        if cache is not None:
            cache.remember(parsed, collateral, root_der, now, DcapVerdict(status, advisories))
    anchor = TrustAnchor.VENDOR_ROOT if unsafe_root_ca_der is None else TrustAnchor.TEST_ROOT
    return _appraise(
        parsed,
        collateral,
        now,
        policy,
        expected_report_data,
        media_type,
        status,
        advisories,
        verified_by,
        anchor,
    )


def _run_dcap(
    parsed: TdxQuote,
    collateral: Collateral,
    now: float,
    root_der: bytes,
    unsafe_root_ca_der: bytes | None,
    policy: AppraisalPolicy,
    expected_report_data: bytes | None,
) -> tuple[str, tuple[str, ...]] | QuoteVerdict:
    """dcap-qvl's verdict on an accepted quote (TCB status, advisory ids), or the rejection
    :func:`check_quote` returns."""
    try:
        if unsafe_root_ca_der is None:
            report = dcap_qvl.verify(parsed.raw, collateral.qvl, int(now))
        else:
            report = dcap_qvl.verify_with_root_ca(parsed.raw, collateral.qvl, root_der, int(now))
    except ValueError as exc:
        engine_reason, error = _translate_dcap_error(str(exc), now)
        if error is not None:
            return _rejected(parsed, error)
        # Authentic evidence whose attributes dcap-qvl refuses: binding first, then policy.
        binding_error = _binding_error(parsed, expected_report_data)
        if binding_error is not None:
            return _rejected(parsed, binding_error)
        reasons = policy.appraise(parsed, None, (), collateral, now)
        if not any(reason.startswith(engine_reason) for reason in reasons):
            reasons.insert(0, f"{engine_reason} (dcap-qvl refuses this whatever the policy)")
        return _rejected(parsed, PolicyRejected(reasons))
    return str(report.status), tuple(report.advisory_ids)


def _appraise(
    parsed: TdxQuote,
    collateral: Collateral,
    now: float,
    policy: AppraisalPolicy,
    expected_report_data: bytes | None,
    media_type: str,
    status: str,
    advisories: tuple[str, ...],
    verified_by: VerifiedBy,
    trust_anchor: TrustAnchor,
) -> TdxAttestation | QuoteVerdict:
    """Binding and policy on a quote DCAP accepted (steps 5 and 6): never cached. Returns the
    result, or the rejection."""
    binding_error = _binding_error(parsed, expected_report_data)
    if binding_error is not None:
        return _rejected(parsed, binding_error, status, advisories)
    reasons = policy.appraise(parsed, status, advisories, collateral, now)
    if reasons:
        return _rejected(parsed, PolicyRejected(reasons), status, advisories)
    body = parsed.body
    # build(): the frozen dataclasses' generated __init__ was a third of this path's time.
    return build(
        TdxAttestation,
        {
            "verified_at": now,
            "media_type": media_type,
            "evidence": parsed.raw,
            "trust_anchor": trust_anchor,
            "tcb_status": status,
            "advisory_ids": advisories,
            "mrtd": body.mrtd,
            "rtmrs": body.rtmrs,
            "mrconfigid": body.mrconfigid,
            "mrowner": body.mrowner,
            "mrownerconfig": body.mrownerconfig,
            "mrseam": body.mrseam,
            "td_attributes": body.td_attributes,
            "xfam": body.xfam,
            "report_data": body.report_data,
            "fmspc": collateral.fmspc_bytes,  # dcap-qvl checked it equals the PCK's
            "quote": parsed,
            "verified_by": verified_by,
        },
    )


def _rejected(
    quote: TdxQuote | None,
    error: AttestationError | QuoteFormatError,
    tcb_status: str | None = None,
    advisory_ids: tuple[str, ...] = (),
) -> QuoteVerdict:
    reasons = error.reasons if isinstance(error, PolicyRejected) else (str(error),)
    return QuoteVerdict(False, reasons, tcb_status, advisory_ids, quote, None, error)


def _trust_anchor(quote: TdxQuote, unsafe_root_ca_der: bytes | None, *, warn: bool = True) -> bytes:
    """The root to verify against; the quote's own chain must end in exactly that root."""
    if unsafe_root_ca_der is None:
        root_der = intel_sgx_root_ca_der()
        anchor_name = "the pinned Intel SGX Root CA"
    else:
        root_der = bytes(unsafe_root_ca_der)
        anchor_name = "the configured unsafe root CA"
    if unsafe_root_ca_der is not None and warn:
        _warn_unsafe_root(root_der)
    if not quote.chain_ends_with(root_der):
        raise EvidenceInvalid(f"the quote's PCK certificate chain does not end in {anchor_name}")
    return root_der


_unsafe_roots_warned: set[bytes] = set()


def _warn_unsafe_root(root_der: bytes) -> None:
    """Warn that a non-Intel root is trusted: once per process and root, not per quote."""
    digest = hashlib.sha256(root_der).digest()
    if digest in _unsafe_roots_warned:
        return
    _unsafe_roots_warned.add(digest)
    _log.warning(
        "tdx.unsafe_root_ca",
        root_sha256=digest.hex(),
        message="TDX quotes are verified against a NON-INTEL root CA; results are marked "
        "TrustAnchor.TEST_ROOT (simulated TDX in tests and demos only)",
    )


def _binding_error(quote: TdxQuote, expected: bytes | None) -> BindingMismatch | None:
    if expected is None:
        return None
    if not hmac.compare_digest(quote.body.report_data, bytes(expected)):
        return BindingMismatch("REPORTDATA does not match the expected channel binding")
    return None


def _translate_dcap_error(message: str, now: float) -> tuple[str, EvidenceInvalid | None]:
    """dcap-qvl's ValueError text as (reason, error); error None = engine policy refusal."""
    text = message.removeprefix("Verification failed:").strip()
    headline = text.split("\n", 1)[0].strip()
    detail = re.sub(r"\s+", " ", text[len(headline) :]).strip()
    detail = detail.removeprefix("Caused by:").strip()
    if headline in _ENGINE_POLICY_REASONS:
        return _ENGINE_POLICY_REASONS[headline], None
    summary = f"{headline} ({detail})" if detail else headline
    if any(marker in text for marker in _WINDOW_MARKERS):
        what = "certificate" if "CertExpired" in text or "NotValidYet" in text else "collateral"
        reason = f"{what} not valid at {format_time(now)}: {summary}"
    elif headline == "No matching TCB level found":
        reason = "TCB not supported: no TCB level of the TCB info matches this platform"
    else:
        reason = f"DCAP verification failed: {summary}"
    return reason, EvidenceInvalid(reason)


# --- the Verifier plug-in --------------------------------------------------------------------


class TdxVerifier:
    """attquic :class:`~attquic.attestation.Verifier` for CMW-wrapped TDX quotes.

    Takes the quote from the CMW record of type :data:`~attquic.profile.TDX_QUOTE_MEDIA_TYPE`
    (alone or inside a collection), gets collateral from ``collateral``, expects REPORTDATA =
    ``binding.report_data`` and appraises with ``policy``.

    DCAP's verdict comes from dcap-qvl, or from a remembered dcap-qvl verdict that proves it
    (:mod:`attquic.tdx.verdict_cache`; the result's ``verified_by`` says which):

    * ``verification_cache`` (default on): the exact quote bytes were accepted by dcap-qvl
      before, with the same collateral and trust anchor, and that verdict is still usable;
    * ``fast_path`` (default on): another quote of the same platform was - every byte equal
      except MRTD .. REPORTDATA and the signature - and this quote's signature verifies with the
      attestation key dcap-qvl accepted then.

    Binding and policy are checked for every quote. ``cache_settings`` bounds both (entries,
    maximum age); ``TdxVerifier(..., verification_cache=False, fast_path=False)`` runs dcap-qvl
    for every quote. :attr:`cache` counts the answers of each path.

    ``offload_to_thread`` runs the verification in a worker thread. It is off by default
    because dcap-qvl 0.7 holds the GIL for the whole verification (~0.5 ms): a thread cannot
    overlap it with the event loop and only adds the hand-off latency (measured in
    benchmarks/verify.py). Turn it on with a verifier backend that releases the GIL.

    With ``unsafe_root_ca_der``, the warning is logged once, here, not per verification.
    """

    def __init__(
        self,
        collateral: CollateralSource,
        policy: AppraisalPolicy = DEFAULT_POLICY,
        *,
        unsafe_root_ca_der: bytes | None = None,
        media_type: str = TDX_QUOTE_MEDIA_TYPE,
        offload_to_thread: bool = False,
        verification_cache: bool = True,
        fast_path: bool = True,
        cache_settings: VerificationCacheSettings | None = None,
    ) -> None:
        self.collateral = collateral
        self.offload_to_thread = offload_to_thread
        self.policy = policy
        self.unsafe_root_ca_der = unsafe_root_ca_der
        self.media_type = media_type
        self.cache = VerdictCache(cache_settings, evidence=verification_cache, platform=fast_path)
        """The remembered dcap-qvl verdicts (``cache.hits`` counts each path's answers)."""
        self._in_flight: dict[tuple[bytes, int], anyio.Event] = {}
        if unsafe_root_ca_der is not None:
            _warn_unsafe_root(bytes(unsafe_root_ca_der))

    async def verify(self, cmw: object, binding: Binding, *, now: float) -> TdxAttestation:
        """Verify the TDX quote in ``cmw`` against ``binding`` at ``now``."""
        quote = parse_quote(self.quote_bytes(cmw))
        collateral = await self.collateral.get(quote, now=now)
        cache = self.cache if self.cache.enabled else None
        run = functools.partial(
            _outcome,
            quote,
            collateral,
            now=now,
            policy=self.policy,
            expected_report_data=binding.report_data,
            unsafe_root_ca_der=self.unsafe_root_ca_der,
            media_type=self.media_type,
            cache=cache,
            warn_unsafe_root=False,
        )
        outcome = await self._offloaded(run, quote, collateral) if self.offload_to_thread else run()
        return _accepted_or_raise(outcome)

    async def _offloaded(
        self,
        run: Callable[[], TdxAttestation | QuoteVerdict],
        quote: TdxQuote,
        collateral: Collateral,
    ) -> TdxAttestation | QuoteVerdict:
        """``run`` in a worker thread; concurrent calls for the same quote and collateral wait
        for the first one, so that the verification cache answers them (inline, the event loop
        serialises the calls anyway). A leader that fails or is cancelled still wakes them; after
        a rejection (never cached) each runs its own verification."""
        if not self.cache.evidence:
            return await anyio.to_thread.run_sync(run)
        key = (hashlib.sha256(quote.raw).digest(), id(collateral))
        pending = self._in_flight.get(key)
        if pending is not None:
            await pending.wait()
            return await anyio.to_thread.run_sync(run)
        done = self._in_flight[key] = anyio.Event()
        try:
            return await anyio.to_thread.run_sync(run)
        finally:
            del self._in_flight[key]
            done.set()

    def quote_bytes(self, cmw: object) -> bytes:
        """The quote carried by the one TDX evidence record in ``cmw`` (EvidenceInvalid)."""
        if type(cmw) is CMWRecord:  # the common shape, without the generic walk
            records: list[object] = [cmw] if cmw.type == self.media_type else []
        else:
            records = [
                rec for rec in _records(cmw, depth=0) if _record_type(rec) == self.media_type
            ]
        if len(records) != 1:
            found = "no" if not records else str(len(records))
            raise EvidenceInvalid(f"CMW carries {found} TDX quote record(s); expected exactly one")
        record = records[0]
        indicator = getattr(record, "ind", None)
        if indicator is not None and not int(indicator) & _EVIDENCE_INDICATOR:
            raise EvidenceInvalid("the TDX quote record is not marked as evidence (ind)")
        value = getattr(record, "value", None)
        if not isinstance(value, (bytes, bytearray)):  # a tuple: "bytes | bytearray" allocates
            raise EvidenceInvalid("the TDX quote record's value is not bytes")
        return bytes(value)


def _record_type(record: object) -> object:
    """The ``type`` of a CMW record (media type text or content format number)."""
    return getattr(record, "type", None)


def _records(cmw: object, *, depth: int) -> Iterator[object]:
    """CMW records in a record or (nested) collection, duck-typed on attquic.cmw's model.

    Collections nested deeper than :data:`_MAX_CMW_DEPTH` are refused (EvidenceInvalid), not
    skipped: a record hidden below the limit must not escape the "exactly one" rule.
    """
    if depth > _MAX_CMW_DEPTH:
        raise EvidenceInvalid(f"CMW collections nested deeper than {_MAX_CMW_DEPTH} levels")
    items = getattr(cmw, "items", None)
    if items is not None and not callable(items):
        for member in items.values():
            yield from _records(member, depth=depth + 1)
    elif hasattr(cmw, "type") and hasattr(cmw, "value"):
        yield cmw
