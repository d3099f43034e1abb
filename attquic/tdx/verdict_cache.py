"""Remembered DCAP verdicts: the verification cache and the platform fast path.

A DCAP verification of a TDX quote (dcap-qvl 0.7) checks two things of very different
lifetimes. The *platform* part - collateral signatures and chains, CRLs, the PCK chain, the QE
report and its signature, the QE identity, the attestation key bound into the QE report, and the
TCB level of the PCK certificate and the TDX module - is the same for every quote one platform
produces until its collateral changes. Only the quote's own signature (by the attestation key,
over header and TD report) and the TD's measurements and REPORTDATA change from quote to quote.

dcap-qvl 0.7's verdict (accept or reject, TCB status, advisories) does not read these fields of
the TD report at all, except through the quote signature: MRTD, MRCONFIGID, MROWNER,
MROWNERCONFIG, RTMR0-3 and REPORTDATA (448 contiguous bytes at body offset 136), and the
64-byte quote signature itself. Every other byte is evaluated, or kept in the key anyway.
(Established from dcap-qvl 0.7.0's source, ``src/verify.rs``/``src/quote.rs``, and by experiment:
tests/test_tdx_fastpath.py.)

So, once dcap-qvl accepted a quote, :class:`VerdictCache` remembers

* the **platform verdict**, keyed by the quote with those fields zeroed (the *masked quote*)
  plus the collateral's content digest and the trust anchor: a later quote with the same key
  is accepted with the same verdict after one ECDSA P-256 check of its signature by the
  attestation key the entry holds (``fast-path``);
* the **evidence verdict**, keyed by the exact quote bytes plus collateral and anchor: the very
  same evidence again (one batched quote covering many connections, or a client reconnecting)
  needs no signature check at all (``cache``).

Only acceptances are remembered; anything that is not a hit takes the full dcap-qvl path, which
therefore gives every rejection, with dcap-qvl's own reason. An entry is used only at times
``verified_at <= now < usable_until``, where ``usable_until`` is the earliest of: the earliest
expiry of any collateral piece (TCB info, QE identity, both CRLs) and of any certificate dcap-qvl
checks (collateral issuer chains, the quote's PCK chain, the trust anchor), and ``verified_at``
plus :attr:`VerificationCacheSettings.max_age`. Every validity check in dcap-qvl has the form
``issued <= now <= expires``, so a check that passed at ``verified_at`` still passes at any such
``now``. Nothing per connection (REPORTDATA binding, batch proof, authenticator) and no policy
decision is ever cached: the caller runs them for every connection.

Memory is bounded: at most ``evidence_entries`` + ``platform_entries`` entries (least recently
used evicted first; ~0.35 KiB per evidence entry, ~0.65 KiB per platform entry plus OpenSSL's
copy of the attestation key) and the digests of the last 8 collateral objects seen.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attquic.errors import ConfigurationError, QuoteFormatError

if TYPE_CHECKING:
    from attquic.tdx.collateral import Collateral
    from attquic.tdx.quote import TdxQuote

__all__ = [
    "MASKED_BODY_RANGE",
    "DcapVerdict",
    "VerdictCache",
    "VerificationCacheSettings",
    "VerifiedBy",
    "masked_quote",
]

VerifiedBy = Literal["dcap-qvl", "fast-path", "cache"]
"""Which path verified a quote: dcap-qvl in full, the platform fast path, or the evidence cache."""

MASKED_BODY_RANGE: Final = (136, 584)
"""TD report body offsets of MRTD .. REPORTDATA (MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG,
RTMR0-3, REPORTDATA): the body bytes dcap-qvl's verdict does not depend on."""

_SIGNATURE_SIZE: Final = 64
_COLLATERAL_MEMO_SIZE: Final = 8
_ECDSA_SHA256: Final = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class VerificationCacheSettings:
    """Bounds of a :class:`VerdictCache` (see the module docstring for what each one holds)."""

    evidence_entries: int = 1024
    """Exact quotes remembered (verification cache)."""
    platform_entries: int = 64
    """Platforms remembered (fast path): one per (masked quote, collateral, trust anchor)."""
    max_age: float = 3600.0
    """Seconds after dcap-qvl's verification during which an entry may be used at most (it
    is unusable earlier if any collateral piece or certificate expires first)."""

    def __post_init__(self) -> None:
        for name in ("evidence_entries", "platform_entries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        if (
            isinstance(self.max_age, bool)
            or not isinstance(self.max_age, int | float)
            or not math.isfinite(self.max_age)
            or self.max_age <= 0
        ):
            raise ConfigurationError(f"max_age must be a positive number, got {self.max_age!r}")


@dataclass(frozen=True, slots=True)
class DcapVerdict:
    """What dcap-qvl said about an accepted quote."""

    tcb_status: str
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    verdict: DcapVerdict
    verified_at: float
    usable_until: float
    attestation_key: ec.EllipticCurvePublicKey | None  # platform entries only

    def usable(self, now: float) -> bool:
        return self.verified_at <= now < self.usable_until


@dataclass(frozen=True, slots=True)
class _CollateralFacts:
    collateral: Collateral  # held so that its id() is not reused while memoised
    digest: bytes
    expires: float


def masked_quote(quote: TdxQuote) -> bytes:
    """``quote.raw`` with MRTD .. REPORTDATA and the quote signature zeroed (the platform key)."""
    masked = bytearray(quote.raw)
    body_start = len(quote.signed_bytes) - _body_size(quote)
    start, end = MASKED_BODY_RANGE
    masked[body_start + start : body_start + end] = bytes(end - start)
    signature_at = len(quote.signed_bytes) + 4  # after the u32 signature-data length
    masked[signature_at : signature_at + _SIGNATURE_SIZE] = bytes(_SIGNATURE_SIZE)
    return bytes(masked)


def _body_size(quote: TdxQuote) -> int:
    from attquic.tdx.quote import TD_REPORT10_SIZE, TD_REPORT15_SIZE, TdReportType

    if quote.body.report_type is TdReportType.TD_REPORT_15:
        return TD_REPORT15_SIZE
    return TD_REPORT10_SIZE


class VerdictCache:
    """Bounded, thread-safe memory of dcap-qvl acceptances (see the module docstring).

    ``evidence`` turns the exact-evidence cache on, ``platform`` the fast path. With both off,
    :meth:`lookup` always misses and :meth:`remember` stores nothing.
    """

    def __init__(
        self,
        settings: VerificationCacheSettings | None = None,
        *,
        evidence: bool = True,
        platform: bool = True,
    ) -> None:
        self.settings = settings if settings is not None else VerificationCacheSettings()
        self.evidence = evidence
        self.platform = platform
        self._evidence: OrderedDict[bytes, _Entry] = OrderedDict()
        self._platforms: OrderedDict[bytes, _Entry] = OrderedDict()
        self._collateral: OrderedDict[int, _CollateralFacts] = OrderedDict()
        self._lock = threading.Lock()
        self.hits: dict[VerifiedBy, int] = {"dcap-qvl": 0, "fast-path": 0, "cache": 0}
        """How often each path answered (``dcap-qvl`` counts :meth:`remember` calls)."""

    @property
    def enabled(self) -> bool:
        return self.evidence or self.platform

    def __len__(self) -> int:
        with self._lock:
            return len(self._evidence) + len(self._platforms)

    def clear(self) -> None:
        """Forget everything (e.g. after a trust or collateral change outside the keys)."""
        with self._lock:
            self._evidence.clear()
            self._platforms.clear()
            self._collateral.clear()

    def lookup(
        self, quote: TdxQuote, collateral: Collateral, anchor_der: bytes, now: float
    ) -> tuple[DcapVerdict, VerifiedBy] | None:
        """dcap-qvl's verdict for ``quote`` if an entry proves it; ``None`` = run dcap-qvl."""
        if not self.enabled:
            return None
        context = self._context(collateral).digest + _anchor_digest(anchor_der)
        if self.evidence:
            key = hashlib.sha256(quote.raw).digest() + context
            entry = self._get(self._evidence, key, now)
            if entry is not None:
                self._count("cache")
                return entry.verdict, "cache"
        if not self.platform:
            return None
        platform_key = hashlib.sha256(masked_quote(quote)).digest() + context
        entry = self._get(self._platforms, platform_key, now)
        if entry is None or entry.attestation_key is None:
            return None
        if not _signature_valid(entry.attestation_key, quote):
            return None  # dcap-qvl gives the rejection and its reason
        if self.evidence:
            self._put(
                self._evidence,
                hashlib.sha256(quote.raw).digest() + context,
                _Entry(entry.verdict, entry.verified_at, entry.usable_until, None),
                self.settings.evidence_entries,
            )
        self._count("fast-path")
        return entry.verdict, "fast-path"

    def remember(
        self,
        quote: TdxQuote,
        collateral: Collateral,
        anchor_der: bytes,
        now: float,
        verdict: DcapVerdict,
    ) -> None:
        """Record that dcap-qvl accepted ``quote`` at ``now`` with ``verdict``."""
        self._count("dcap-qvl")
        if not self.enabled:
            return
        facts = self._context(collateral)
        try:
            chain_der = quote.pck_chain_der
        except QuoteFormatError:
            return  # dcap-qvl read the chain, attquic cannot: in doubt, remember nothing
        expires = min(
            facts.expires,
            _chain_expiry(chain_der),
            _certificate_expiry(anchor_der),
            now + self.settings.max_age,
        )
        if not now < expires:
            return
        context = facts.digest + _anchor_digest(anchor_der)
        if self.evidence:
            key = hashlib.sha256(quote.raw).digest() + context
            entry = _Entry(verdict, now, expires, None)
            self._put(self._evidence, key, entry, self.settings.evidence_entries)
        if self.platform:
            try:
                attestation_key = ec.EllipticCurvePublicKey.from_encoded_point(
                    ec.SECP256R1(), b"\x04" + quote.signature_data.attestation_key
                )
            except ValueError:
                return  # dcap-qvl accepted it, so this cannot happen; in doubt, no fast path
            key = hashlib.sha256(masked_quote(quote)).digest() + context
            entry = _Entry(verdict, now, expires, attestation_key)
            self._put(self._platforms, key, entry, self.settings.platform_entries)

    # --- internals ---------------------------------------------------------------------------

    def _count(self, path: VerifiedBy) -> None:
        with self._lock:
            self.hits[path] += 1

    def _get(self, table: OrderedDict[bytes, _Entry], key: bytes, now: float) -> _Entry | None:
        with self._lock:
            entry = table.get(key)
            if entry is None:
                return None
            if not entry.usable(now):
                if now >= entry.usable_until:
                    del table[key]  # expired for good; a clock before verified_at just misses
                return None
            table.move_to_end(key)
            return entry

    def _put(
        self, table: OrderedDict[bytes, _Entry], key: bytes, entry: _Entry, bound: int
    ) -> None:
        with self._lock:
            table[key] = entry
            table.move_to_end(key)
            while len(table) > bound:
                table.popitem(last=False)

    def _context(self, collateral: Collateral) -> _CollateralFacts:
        """Digest (SHA-256 of dcap-qvl's serialisation of every field) and earliest expiry of
        ``collateral``, computed once per object."""
        with self._lock:
            facts = self._collateral.get(id(collateral))
            if facts is not None and facts.collateral is collateral:
                self._collateral.move_to_end(id(collateral))
                return facts
        text: str = collateral.qvl.to_json()
        facts = _CollateralFacts(
            collateral, hashlib.sha256(text.encode("utf-8")).digest(), _expiry(collateral, text)
        )
        with self._lock:
            self._collateral[id(collateral)] = facts
            while len(self._collateral) > _COLLATERAL_MEMO_SIZE:
                self._collateral.popitem(last=False)
        return facts


def _signature_valid(key: ec.EllipticCurvePublicKey, quote: TdxQuote) -> bool:
    """The quote signature (raw r‖s) by ``key`` over header ‖ (descriptor ‖) TD report."""
    signature = quote.signature_data.signature
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), quote.signed_bytes, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


_ANCHOR_DIGESTS: dict[bytes, bytes] = {}


def _anchor_digest(anchor_der: bytes) -> bytes:
    digest = _ANCHOR_DIGESTS.get(anchor_der)
    if digest is None:
        digest = hashlib.sha256(anchor_der).digest()
        if len(_ANCHOR_DIGESTS) < 16:  # the pinned root and a few test roots
            _ANCHOR_DIGESTS[anchor_der] = digest
    return digest


def _expiry(collateral: Collateral, text: str) -> float:
    """Earliest expiry of any collateral piece or certificate in it (-inf if unreadable).

    ``text`` is dcap-qvl's serialisation of the collateral (the digest's input): it also holds
    the optional ``pck_certificate_chain``, which dcap-qvl then uses instead of the quote's and
    which its Python binding does not expose as an attribute.
    """
    try:
        fields = json.loads(text)
        chains = [
            fields[name]
            for name in (
                "pck_crl_issuer_chain",
                "tcb_info_issuer_chain",
                "qe_identity_issuer_chain",
                "pck_certificate_chain",
            )
            if fields.get(name) is not None
        ]
    except (ValueError, TypeError, KeyError):
        return -math.inf
    expiry = collateral.not_after
    for chain in chains:
        try:
            certificates = x509.load_pem_x509_certificates(str(chain).encode())
        except ValueError:
            return -math.inf
        for certificate in certificates:
            expiry = min(expiry, certificate.not_valid_after_utc.timestamp())
    return expiry


def _chain_expiry(chain_der: tuple[bytes, ...]) -> float:
    return min((_certificate_expiry(der) for der in chain_der), default=-math.inf)


def _certificate_expiry(der: bytes) -> float:
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    except (ValueError, x509.InvalidVersion):
        return -math.inf
