"""DCAP collateral: the signed TCB info, QE identity and CRLs a quote is verified against.

* :class:`Collateral` wraps dcap-qvl's ``QuoteCollateralV3`` together with the validity window
  of every piece, parsed once (the verification hot path never re-parses JSON).
* A :class:`CollateralSource` gives the collateral for a quote: :class:`StaticCollateral` /
  :class:`FileCollateral` (dcap-qvl JSON), or :class:`PccsCollateral`, which fetches the pieces
  from a PCCS or the Intel PCS v4 API over HTTP.
* :class:`CollateralCache` keeps fetched collateral per (FMSPC, CA type) until the collateral's
  own earliest ``nextUpdate``; one process-wide instance is shared by default, and it can persist
  to a directory.

Every failure to load, fetch or parse collateral raises :class:`~attquic.errors.CollateralError`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import anyio
import dcap_qvl
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attquic.errors import CollateralError
from attquic.tdx.quote import TdxQuote

__all__ = [
    "INTEL_PCS_URL",
    "INTEL_ROOT_CA_CRL_URL",
    "SHARED_COLLATERAL_CACHE",
    "Collateral",
    "CollateralCache",
    "CollateralSource",
    "FileCollateral",
    "PccsCollateral",
    "StaticCollateral",
    "format_time",
]

INTEL_PCS_URL: Final = "https://api.trustedservices.intel.com"
"""Base URL of the Intel Provisioning Certification Service (v4 API paths are appended)."""
INTEL_ROOT_CA_CRL_URL: Final = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
"""CRL distribution point of the Intel SGX Root CA (the PCS has no root-CRL endpoint)."""

_COLLATERAL_KEYS: Final = (
    "pck_crl_issuer_chain",
    "root_ca_crl",
    "pck_crl",
    "tcb_info_issuer_chain",
    "tcb_info",
    "tcb_info_signature",
    "qe_identity_issuer_chain",
    "qe_identity",
    "qe_identity_signature",
)


def format_time(unix: float) -> str:
    """``2025-07-19T10:00:35Z`` for a Unix time (for reasons and logs)."""
    try:
        return datetime.fromtimestamp(int(unix), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"unix {unix}"


@dataclass(frozen=True)
class Collateral:
    """One set of DCAP collateral and the validity window of each piece (Unix seconds).

    Build with :meth:`from_json`, :meth:`from_file` or :meth:`from_qvl`. The collateral is
    usable at ``now`` when ``not_before <= now < not_after``.
    """

    qvl: Any
    """The ``dcap_qvl.QuoteCollateralV3`` handed to dcap-qvl (kept, never re-parsed)."""
    fmspc: str
    """FMSPC the TCB info is for (upper-case hex)."""
    tcb_evaluation_data_number: int
    tcb_info_issue_date: float
    tcb_info_next_update: float
    qe_identity_issue_date: float
    qe_identity_next_update: float
    pck_crl_this_update: float
    pck_crl_next_update: float
    root_ca_crl_this_update: float
    root_ca_crl_next_update: float

    @property
    def not_before(self) -> float:
        """The latest issue date of any piece: before it some piece is not yet valid."""
        return max(
            self.tcb_info_issue_date,
            self.qe_identity_issue_date,
            self.pck_crl_this_update,
            self.root_ca_crl_this_update,
        )

    @property
    def not_after(self) -> float:
        """The earliest ``nextUpdate`` of any piece: from then on the collateral is stale."""
        return min(
            self.tcb_info_next_update,
            self.qe_identity_next_update,
            self.pck_crl_next_update,
            self.root_ca_crl_next_update,
        )

    @property
    def issued_at(self) -> float:
        """The oldest issue date of TCB info, QE identity and PCK CRL (for the age limit).

        The root CA CRL is left out: Intel reissues it yearly, the others about monthly.
        """
        return min(self.tcb_info_issue_date, self.qe_identity_issue_date, self.pck_crl_this_update)

    @functools.cached_property
    def fmspc_bytes(self) -> bytes:
        """:attr:`fmspc` as 6 bytes (computed once per collateral object).

        Raises ValueError if :attr:`fmspc` is not hex (:meth:`from_qvl` does not check it)."""
        return bytes.fromhex(self.fmspc)

    @functools.cached_property
    def _usable_window(self) -> tuple[float, float]:
        """(:attr:`not_before`, :attr:`not_after`), computed once per collateral object (the
        fields are frozen); an empty window when any bound is NaN, so that
        :meth:`window_problem` then always takes its piece-by-piece path."""
        bounds = (
            self.tcb_info_issue_date,
            self.tcb_info_next_update,
            self.qe_identity_issue_date,
            self.qe_identity_next_update,
            self.pck_crl_this_update,
            self.pck_crl_next_update,
            self.root_ca_crl_this_update,
            self.root_ca_crl_next_update,
        )
        if any(math.isnan(bound) for bound in bounds):
            return (math.inf, -math.inf)
        return (self.not_before, self.not_after)

    def window_problem(self, now: float) -> str | None:
        """``None`` when usable at ``now``; otherwise a reason naming every piece at fault."""
        not_before, not_after = self._usable_window
        if not_before <= now < not_after:  # every piece is usable: the common case, fast
            return None
        pieces = (
            ("TCB info", self.tcb_info_issue_date, self.tcb_info_next_update),
            ("QE identity", self.qe_identity_issue_date, self.qe_identity_next_update),
            ("PCK CRL", self.pck_crl_this_update, self.pck_crl_next_update),
            ("root CA CRL", self.root_ca_crl_this_update, self.root_ca_crl_next_update),
        )
        faults = [
            f"{name} issued {format_time(start)} (in the future)"
            if now < start
            else f"{name} expired {format_time(end)}"
            for name, start, end in pieces
            if not start <= now < end
        ]
        if not faults:
            return None
        return f"collateral not valid at {format_time(now)}: " + "; ".join(faults)

    @classmethod
    def from_qvl(cls, qvl: Any) -> Collateral:
        """Wrap a ``dcap_qvl.QuoteCollateralV3``, parsing the validity windows once."""
        try:
            tcb_info = json.loads(qvl.tcb_info)
            qe_identity = json.loads(qvl.qe_identity)
            tcb_start, tcb_end = _json_window(tcb_info, "TCB info")
            qe_start, qe_end = _json_window(qe_identity, "QE identity")
            pck_start, pck_end = _crl_window(bytes(qvl.pck_crl), "PCK CRL")
            root_start, root_end = _crl_window(bytes(qvl.root_ca_crl), "root CA CRL")
            fmspc = str(tcb_info["fmspc"]).upper()
            eval_number = int(tcb_info.get("tcbEvaluationDataNumber", 0))
        except CollateralError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CollateralError(f"malformed collateral: {exc!r}") from None
        return cls(
            qvl=qvl,
            fmspc=fmspc,
            tcb_evaluation_data_number=eval_number,
            tcb_info_issue_date=tcb_start,
            tcb_info_next_update=tcb_end,
            qe_identity_issue_date=qe_start,
            qe_identity_next_update=qe_end,
            pck_crl_this_update=pck_start,
            pck_crl_next_update=pck_end,
            root_ca_crl_this_update=root_start,
            root_ca_crl_next_update=root_end,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Collateral:
        """Parse dcap-qvl collateral JSON (``QuoteCollateralV3.to_json()`` format)."""
        try:
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            obj = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise CollateralError(f"collateral is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise CollateralError("collateral JSON is not an object")
        missing = [key for key in _COLLATERAL_KEYS if key not in obj]
        if missing:
            raise CollateralError(f"collateral JSON lacks {', '.join(missing)}")
        try:
            qvl = dcap_qvl.QuoteCollateralV3.from_json(text)
        except (ValueError, TypeError) as exc:
            raise CollateralError(f"dcap-qvl rejected the collateral JSON: {exc}") from None
        return cls.from_qvl(qvl)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Collateral:
        """Load dcap-qvl collateral JSON from a file."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise CollateralError(f"cannot read collateral file {path}: {exc.strerror}") from None
        return cls.from_json(text)

    def to_json(self) -> str:
        """dcap-qvl collateral JSON (round-trips through :meth:`from_json`)."""
        text: str = self.qvl.to_json()
        return text


def _parse_time(value: object, what: str) -> float:
    if not isinstance(value, str):
        raise CollateralError(f"{what} is not a date string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CollateralError(f"{what} is not an ISO 8601 date: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _json_window(document: object, what: str) -> tuple[float, float]:
    if not isinstance(document, dict):
        raise CollateralError(f"{what} is not a JSON object")
    return (
        _parse_time(document.get("issueDate"), f"{what} issueDate"),
        _parse_time(document.get("nextUpdate"), f"{what} nextUpdate"),
    )


def _crl_window(der: bytes, what: str) -> tuple[float, float]:
    try:
        crl = x509.load_der_x509_crl(der)
    except ValueError as exc:
        raise CollateralError(f"{what} is not a DER CRL: {exc}") from None
    next_update = crl.next_update_utc
    if next_update is None:
        raise CollateralError(f"{what} has no nextUpdate")
    return crl.last_update_utc.timestamp(), next_update.timestamp()


# --- sources ----------------------------------------------------------------------------------


@runtime_checkable
class CollateralSource(Protocol):
    """Where a verifier gets the collateral for a quote."""

    async def get(self, quote: TdxQuote, *, now: float) -> Collateral:
        """The collateral to verify ``quote`` at ``now``; raises CollateralError."""
        ...


class StaticCollateral:
    """Always the same collateral (tests, offline verification, the simulated TDX)."""

    def __init__(self, collateral: Collateral) -> None:
        self.collateral = collateral

    async def get(self, quote: TdxQuote, *, now: float) -> Collateral:
        return self.collateral


class FileCollateral(StaticCollateral):
    """Collateral loaded once from a dcap-qvl JSON file (raises CollateralError at once)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        super().__init__(Collateral.from_file(self.path))


class CollateralCache:
    """Collateral per (FMSPC, CA type), each kept until its own earliest ``nextUpdate``.

    Thread-safe. With ``directory``, entries are also written there (one JSON file per key,
    replaced atomically) and read back on a miss, so a restarted process starts warm.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._entries: dict[tuple[str, str], Collateral] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(fmspc: bytes | str, ca: str) -> tuple[str, str]:
        """Normalised cache key: upper-case FMSPC hex and lower-case CA type."""
        hex_fmspc = fmspc.hex() if isinstance(fmspc, bytes) else fmspc
        return hex_fmspc.upper(), ca.lower()

    def get(self, fmspc: bytes | str, ca: str, *, now: float) -> Collateral | None:
        """The cached collateral if still fresh at ``now`` (expired entries are dropped)."""
        key = self.key(fmspc, ca)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now >= entry.not_after:
                del self._entries[key]
                entry = None
        if entry is None:
            entry = self._load(key, now)
        return entry

    def put(self, fmspc: bytes | str, ca: str, collateral: Collateral) -> None:
        """Store ``collateral`` (and persist it when a directory is configured)."""
        key = self.key(fmspc, ca)
        with self._lock:
            self._entries[key] = collateral
        if self.directory is not None:
            self._store(key, collateral)

    def clear(self) -> None:
        """Forget every in-memory entry (persisted files stay)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _path(self, key: tuple[str, str]) -> Path:
        assert self.directory is not None
        return self.directory / f"tdx-collateral-{key[0]}-{key[1]}.json"

    def _load(self, key: tuple[str, str], now: float) -> Collateral | None:
        if self.directory is None:
            return None
        try:
            collateral = Collateral.from_file(self._path(key))
        except CollateralError:
            return None  # absent or unreadable: a miss, refetched and rewritten
        if now >= collateral.not_after:
            return None
        with self._lock:
            self._entries[key] = collateral
        return collateral

    def _store(self, key: tuple[str, str], collateral: Collateral) -> None:
        assert self.directory is not None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(collateral.to_json())
            os.replace(tmp, self._path(key))
        except OSError as exc:
            raise CollateralError(f"cannot persist collateral in {self.directory}: {exc}") from None


SHARED_COLLATERAL_CACHE: Final = CollateralCache()
"""The process-wide cache :class:`PccsCollateral` uses unless told otherwise."""


class PccsCollateral:
    """Fetches collateral from a PCCS or the Intel PCS (v4 API) over HTTP, with a cache.

    ``base_url`` is the service root (e.g. ``https://pccs.example:8081`` or
    :data:`INTEL_PCS_URL`); the v4 paths are appended. ``cache`` defaults to the process-wide
    :data:`SHARED_COLLATERAL_CACHE`; pass ``None`` to fetch on every call. ``root_ca_crl_url``
    defaults to the PCCS ``/sgx/certification/v4/rootcacrl`` endpoint; use
    :data:`INTEL_ROOT_CA_CRL_URL` with the Intel PCS (see :meth:`intel_pcs`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        cache: CollateralCache | None = SHARED_COLLATERAL_CACHE,
        timeout: float = 10.0,
        root_ca_crl_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache = cache
        self.timeout = timeout
        self.root_ca_crl_url = root_ca_crl_url or f"{self.base_url}/sgx/certification/v4/rootcacrl"
        self._transport = transport
        self._locks: dict[tuple[str, str], anyio.Lock] = {}

    @classmethod
    def intel_pcs(
        cls, *, cache: CollateralCache | None = SHARED_COLLATERAL_CACHE, timeout: float = 10.0
    ) -> PccsCollateral:
        """A source using the Intel PCS directly (and Intel's root CA CRL distribution point)."""
        return cls(
            INTEL_PCS_URL, cache=cache, timeout=timeout, root_ca_crl_url=INTEL_ROOT_CA_CRL_URL
        )

    async def get(self, quote: TdxQuote, *, now: float) -> Collateral:
        """Cached collateral for the quote's (FMSPC, CA), fetched when missing or stale."""
        try:
            fmspc, ca = quote.fmspc.hex().upper(), quote.ca
        except Exception as exc:
            raise CollateralError(f"cannot tell which collateral the quote needs: {exc}") from None
        return await self.get_for(fmspc, ca, now=now)

    async def get_for(self, fmspc: str, ca: str, *, now: float) -> Collateral:
        """Collateral for an explicit FMSPC (hex) and CA type (``platform``/``processor``)."""
        key = CollateralCache.key(fmspc, ca)
        if self.cache is not None:
            cached = self.cache.get(*key, now=now)
            if cached is not None:
                return cached
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:  # one fetch per key at a time; later waiters hit the cache
            if self.cache is not None:
                cached = self.cache.get(*key, now=now)
                if cached is not None:
                    return cached
            collateral = await self.fetch(*key)
            if self.cache is not None and now < collateral.not_after:
                self.cache.put(*key, collateral)
            return collateral

    async def fetch(self, fmspc: str, ca: str) -> Collateral:
        """Fetch all four pieces now, bypassing the cache."""
        base = self.base_url
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout, transport=self._transport, follow_redirects=True
            ) as client:
                tcb = await self._get(client, f"{base}/tdx/certification/v4/tcb", {"fmspc": fmspc})
                qe = await self._get(client, f"{base}/tdx/certification/v4/qe/identity", None)
                pck_crl = await self._get(
                    client,
                    f"{base}/sgx/certification/v4/pckcrl",
                    {"ca": ca, "encoding": "der"},
                )
                root_crl = await self._get(client, self.root_ca_crl_url, None)
        except httpx.HTTPError as exc:
            raise CollateralError(
                f"collateral service {base} unreachable: {type(exc).__name__}: {exc}"
            ) from None
        tcb_info, tcb_signature = _signed_json(tcb, "tcbInfo", "TCB info")
        qe_identity, qe_signature = _signed_json(qe, "enclaveIdentity", "QE identity")
        try:
            qvl = dcap_qvl.QuoteCollateralV3(
                pck_crl_issuer_chain=_issuer_chain(pck_crl, ("SGX-PCK-CRL-Issuer-Chain",)),
                root_ca_crl=_crl_der(root_crl.content, "root CA CRL"),
                pck_crl=_crl_der(pck_crl.content, "PCK CRL"),
                tcb_info_issuer_chain=_issuer_chain(
                    tcb, ("TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain")
                ),
                tcb_info=tcb_info,
                tcb_info_signature=tcb_signature,
                qe_identity_issuer_chain=_issuer_chain(qe, ("SGX-Enclave-Identity-Issuer-Chain",)),
                qe_identity=qe_identity,
                qe_identity_signature=qe_signature,
            )
        except (ValueError, TypeError) as exc:
            raise CollateralError(f"dcap-qvl rejected the fetched collateral: {exc}") from None
        return Collateral.from_qvl(qvl)

    @staticmethod
    async def _get(
        client: httpx.AsyncClient, url: str, params: Mapping[str, str] | None
    ) -> httpx.Response:
        response = await client.get(url, params=params)
        if response.status_code != 200:
            raise CollateralError(
                f"collateral request {response.request.url} failed: HTTP {response.status_code}"
            )
        return response


def _signed_json(response: httpx.Response, member: str, what: str) -> tuple[str, bytes]:
    """The exact text of ``member`` (as signed, never re-serialised) and its signature."""
    text = response.text
    try:
        document = json.loads(text)
        signature = bytes.fromhex(document["signature"])
        if not isinstance(document[member], dict):
            raise TypeError(f"{member} is not an object")
    except (ValueError, TypeError, KeyError) as exc:
        raise CollateralError(f"malformed {what} response: {exc!r}") from None
    start = text.find(f'"{member}"')
    colon = text.find(":", start)
    decoder = json.JSONDecoder()
    value_start = colon + 1
    while value_start < len(text) and text[value_start] in " \t\r\n":
        value_start += 1
    try:
        _, value_end = decoder.raw_decode(text, value_start)
    except ValueError as exc:
        raise CollateralError(f"malformed {what} response: {exc}") from None
    return text[value_start:value_end], signature


def _issuer_chain(response: httpx.Response, names: tuple[str, ...]) -> str:
    for name in names:
        value = response.headers.get(name)
        if value:
            chain = urllib.parse.unquote(value)
            if "-----BEGIN CERTIFICATE-----" not in chain:
                raise CollateralError(f"{name} header holds no PEM certificate")
            return chain
    raise CollateralError(f"response from {response.request.url} lacks the {names[0]} header")


def _crl_der(body: bytes, what: str) -> bytes:
    """A CRL body as DER, whether served as DER, PEM or hex text (PCCS does all three)."""
    if body[:1] == b"\x30":
        return body
    stripped = body.strip()
    if stripped.startswith(b"-----BEGIN X509 CRL-----"):
        try:
            return x509.load_pem_x509_crl(stripped).public_bytes(serialization.Encoding.DER)
        except ValueError:
            raise CollateralError(f"{what}: malformed PEM") from None
    try:
        return bytes.fromhex(stripped.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise CollateralError(f"{what} is neither DER, PEM nor hex") from None
