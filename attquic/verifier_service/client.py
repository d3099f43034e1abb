"""Client side of the verification API: :class:`VerifierClient` and :class:`PassportAttester`.

:class:`VerifierClient` speaks to attquic's verifier service or to a Veraison deployment
(discovery, newSession with a caller-chosen nonce, evidence submission, result, delete).
Every transport failure or error status raises :class:`~attquic.errors.VerifierUnavailable`.

:class:`PassportAttester` is the attester side of the passport model
(:class:`~attquic.attestation.Attester`): for each binding it gets a quote with REPORTDATA per
docs/protocol.md, has the service appraise it with ``nonce = binding.binding``, and returns the EAR
as the passport CMW record. Failures raise :class:`~attquic.errors.AttesterUnavailable`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.to_thread
import httpx

from attquic import profile
from attquic.batching import DEFAULT_MAX_BATCH_SIZE, EvidenceBatcher
from attquic.cmw import CMW, CMWRecord
from attquic.ear.claims import b64url_decode, parse_claims_json
from attquic.ear.token import ACCEPTED_PROFILES, ear_media_type
from attquic.errors import AttesterUnavailable, EvidenceInvalid, VerifierUnavailable
from attquic.keyschedule import Binding
from attquic.verifier_service.evidence import (
    ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE,
    encode_attquic_evidence,
)
from attquic.verifier_service.server import (
    DISCOVERY_PATH,
    NEW_SESSION_PATH,
    SESSION_MEDIA_TYPE,
)

__all__ = [
    "ChallengeSession",
    "PassportAttester",
    "QuoteSource",
    "VerifierClient",
    "VerifierInfo",
]

_MAX_RESPONSE = 1024 * 1024


@dataclass(frozen=True)
class VerifierInfo:
    """What ``GET /.well-known/veraison/verification`` says."""

    ear_verification_key: dict[str, Any]
    media_types: tuple[str, ...]
    version: str
    state: str
    api_endpoints: dict[str, str]


@dataclass(frozen=True)
class ChallengeSession:
    """A challenge-response session resource as last seen."""

    url: str
    nonce: bytes
    expiry: str
    accept: tuple[str, ...]
    status: str
    result: str | None
    """The EAR JWT once ``status`` is "complete"."""


def _b64url(text: object) -> bytes:
    if not isinstance(text, str):
        raise VerifierUnavailable("verifier: nonce is not text")
    unpadded = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise VerifierUnavailable("verifier: nonce is not base64url") from None


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class VerifierClient:
    """Async client of a Veraison-style verification service at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> VerifierClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- plumbing ----------------------------------------------------------------------------

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise VerifierUnavailable(f"verifier {url}: {exc!r}") from None
        if response.status_code >= 400:
            detail = response.reason_phrase
            try:
                body = response.json()
                if isinstance(body, dict) and isinstance(body.get("detail"), str):
                    detail = body["detail"]
            except ValueError:
                pass
            raise VerifierUnavailable(f"verifier {method} {url}: {response.status_code} {detail}")
        if len(response.content) > _MAX_RESPONSE:
            raise VerifierUnavailable("verifier: response too large")
        return response

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise VerifierUnavailable("verifier: response is not JSON") from None
        if not isinstance(body, dict):
            raise VerifierUnavailable("verifier: response is not a JSON object")
        return body

    def _session(self, url: str, response: httpx.Response) -> ChallengeSession:
        body = self._json(response)
        accept = body.get("accept", [])
        status, result, expiry = body.get("status"), body.get("result"), body.get("expiry", "")
        if (
            not isinstance(status, str)
            or not isinstance(accept, list)
            or not all(isinstance(a, str) for a in accept)
            or not isinstance(expiry, str)
            or not (result is None or isinstance(result, str))
        ):
            raise VerifierUnavailable("verifier: malformed session resource")
        return ChallengeSession(
            url, _b64url(body.get("nonce")), expiry, tuple(accept), status, result
        )

    # -- API ---------------------------------------------------------------------------------

    async def discover(self) -> VerifierInfo:
        """The service's EAR verification key, media types, version and state."""
        body = self._json(await self._request("GET", self.base_url + DISCOVERY_PATH))
        key, media = body.get("ear-verification-key"), body.get("media-types", [])
        endpoints = body.get("api-endpoints", {})
        if (
            not isinstance(key, dict)
            or not isinstance(media, list)
            or not all(isinstance(m, str) for m in media)
            or not isinstance(endpoints, dict)
        ):
            raise VerifierUnavailable("verifier: malformed discovery document")
        return VerifierInfo(
            key,
            tuple(media),
            str(body.get("version", "")),
            str(body.get("state", "")),
            {str(k): str(v) for k, v in endpoints.items()},
        )

    async def new_session(self, nonce: bytes | None = None) -> ChallengeSession:
        """Open a session with ``nonce`` (or a service-chosen one when None)."""
        params = {"nonce": _b64url_encode(nonce)} if nonce is not None else {}
        url = self.base_url + NEW_SESSION_PATH
        response = await self._request(
            "POST", url, params=params, headers={"Accept": SESSION_MEDIA_TYPE}
        )
        location = response.headers.get("Location")
        if response.status_code != 201 or not location:
            raise VerifierUnavailable("verifier: newSession did not create a session")
        session = self._session(str(response.url.join(location)), response)
        if nonce is not None and session.nonce != nonce:
            raise VerifierUnavailable("verifier: session nonce differs from the one requested")
        return session

    async def submit(
        self, session: ChallengeSession, evidence: bytes, media_type: str
    ) -> ChallengeSession:
        """POST ``evidence`` as ``media_type`` to the session."""
        response = await self._request(
            "POST",
            session.url,
            content=evidence,
            headers={"Content-Type": media_type, "Accept": SESSION_MEDIA_TYPE},
        )
        return self._session(session.url, response)

    async def get(self, session_url: str) -> ChallengeSession:
        response = await self._request("GET", session_url, headers={"Accept": SESSION_MEDIA_TYPE})
        return self._session(session_url, response)

    async def delete(self, session_url: str) -> None:
        await self._request("DELETE", session_url)

    async def appraise(
        self,
        nonce: bytes,
        evidence: bytes,
        media_type: str,
        *,
        poll_interval: float = 0.1,
        max_polls: int = 100,
    ) -> str:
        """The whole flow: newSession(nonce), submit, poll if asynchronous, delete; the EAR."""
        session = await self.new_session(nonce)
        try:
            session = await self.submit(session, evidence, media_type)
            for _ in range(max_polls):
                if session.status != "processing":
                    break
                await anyio.sleep(poll_interval)
                session = await self.get(session.url)
            if session.status != "complete" or session.result is None:
                raise VerifierUnavailable(f"verifier: session ended {session.status!r}")
            return session.result
        finally:
            # Best effort: session expiry collects it anyway.
            with anyio.CancelScope(shield=True), contextlib.suppress(VerifierUnavailable):
                await self.delete(session.url)


class QuoteSource(Protocol):
    """Anything with ``get_quote(report_data) -> quote bytes`` (sync or async), e.g.
    :class:`~attquic.tdx.simulated.SimulatedTdxAttester` or the configfs-tsm attester."""

    def get_quote(self, report_data: bytes) -> bytes | Awaitable[bytes]: ...


class PassportAttester:
    """:class:`~attquic.attestation.Attester` for the passport model.

    ``attest(binding)``: quote with REPORTDATA = ``binding.report_data`` (layout v1), submitted
    as :data:`~attquic.verifier_service.evidence.ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE` together with
    ``binding.aik_pub_hash`` on a session whose nonce is ``binding.binding``; the returned EAR
    goes into ``CMWRecord(media type, ear, IND_ATTESTATION_RESULTS)``, the media type naming the
    EAR's own ``eat_profile`` (:data:`~attquic.ear.IETF_EAR_MEDIA_TYPE` for attquic's service,
    :data:`~attquic.ear.VERAISON_EAR_MEDIA_TYPE` for a Veraison one). The attester does not
    verify the EAR (the relying party does), but it refuses to present a result that is not an
    EAR JWT of one of :data:`~attquic.ear.ACCEPTED_PROFILES`. A synchronous ``get_quote`` runs
    in a worker thread (it may block on configfs-tsm).
    """

    def __init__(
        self,
        quote_source: QuoteSource,
        client: VerifierClient,
        *,
        batching: bool = True,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    ) -> None:
        self.quote_source = quote_source
        self.client = client
        self.batcher = (
            EvidenceBatcher(self.attest, max_batch_size=max_batch_size) if batching else None
        )
        """Batching (default on): toward peers that accept batched evidence, one quote, one
        verifier-service session and one EAR (``eat_nonce`` = the batch root) per batch."""

    async def _quote(self, report_data: bytes) -> bytes:
        get_quote: Callable[[bytes], bytes | Awaitable[bytes]] = self.quote_source.get_quote
        if inspect.iscoroutinefunction(get_quote):
            produced = await get_quote(report_data)
        else:
            produced = await anyio.to_thread.run_sync(get_quote, report_data)
            if inspect.isawaitable(produced):
                produced = await produced
        assert isinstance(produced, bytes)
        return produced

    async def attest(self, binding: Binding) -> CMWRecord:
        quote = await self._quote(binding.report_data)
        evidence = encode_attquic_evidence(quote, binding.aik_pub_hash)
        try:
            ear = await self.client.appraise(
                binding.binding, evidence, ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE
            )
        except VerifierUnavailable as exc:
            raise AttesterUnavailable(f"no attestation result from the verifier: {exc}") from exc
        media_type = ear_media_type(_ear_profile_of(ear))
        return CMWRecord(media_type, ear.encode("ascii"), profile.IND_ATTESTATION_RESULTS)

    async def attest_batched(self, binding: Binding) -> CMW:
        """The batch's EAR plus this binding's inclusion proof (:meth:`attest` if not batching)."""
        if self.batcher is None:
            return await self.attest(binding)
        return await self.batcher.attest(binding)


def _ear_profile_of(token: str) -> str:
    """The ``eat_profile`` of an (unverified) EAR JWT from the verifier, if it is accepted."""
    segments = token.split(".")
    try:
        if not token.isascii() or len(segments) != 3:
            raise EvidenceInvalid("not a compact JWS")
        claims = parse_claims_json(b64url_decode(segments[1], "JWS payload"))
    except EvidenceInvalid as exc:
        raise AttesterUnavailable(f"the verifier's result is not an EAR JWT: {exc}") from None
    ear_profile = claims.get("eat_profile")
    if ear_profile not in ACCEPTED_PROFILES:
        raise AttesterUnavailable(f"the verifier issued an EAR with profile {ear_profile!r}")
    assert isinstance(ear_profile, str)
    return ear_profile
