"""A Veraison-compatible verification service (the subset an attester needs), on aiohttp.

Endpoints (same paths, bodies and media types as Veraison's verification API):

* ``GET /.well-known/veraison/verification``: discovery (EAR verification key as a JWK,
  accepted evidence media types, version, state, API endpoints).
* ``POST /challenge-response/v1/newSession?nonce=<base64url>`` (or ``?nonceSize=N``, or
  neither for a 32-byte random nonce): ``201 Created``, ``Location`` of the session, the
  session JSON (``status`` "waiting", ``nonce``, ``expiry``, ``accept``).
* ``POST /challenge-response/v1/session/<id>`` with the evidence as body and its media type as
  ``Content-Type``: synchronous appraisal, ``200`` with ``status`` "complete" and the EAR JWT
  as ``result`` (draft-ietf-rats-ear-03 by default, Veraison's profile if configured).
* ``GET`` the session (``200``), ``DELETE`` it (``204``).

Every error is an RFC 9457 ``application/problem+json`` body: malformed nonce or nonceSize,
both given, empty or malformed evidence 400; unknown or expired session 404 (Veraison drops
expired sessions, so they are indistinguishable from unknown ones); evidence submitted twice
409; oversized evidence 413; unsupported media type 415 (with an ``Accept`` header listing the
supported ones); too many live sessions or collateral unreachable 503; anything unexpected 500.
Nothing a client sends can take the service down: every handler error becomes a response.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from joserfc.jwk import ECKey

import attquic
from attquic.ear.claims import (
    IETF_PROFILE,
    VERAISON_PROFILE,
    Appraisal,
    EarClaims,
    VerifierId,
    b64url_encode,
)
from attquic.ear.keys import public_jwk
from attquic.ear.token import TDX_SUBMODULE, issue_ear
from attquic.errors import ConfigurationError, VerifierUnavailable
from attquic.logs import get_logger
from attquic.verifier_service.appraiser import EvidenceAppraiser
from attquic.verifier_service.evidence import EvidenceFormatError, normalize_media_type

__all__ = [
    "DISCOVERY_MEDIA_TYPE",
    "DISCOVERY_PATH",
    "NEW_SESSION_PATH",
    "PROBLEM_MEDIA_TYPE",
    "SESSION_MEDIA_TYPE",
    "SESSION_PATH_PREFIX",
    "VerifierService",
    "VerifierServiceConfig",
    "create_app",
]

_log = get_logger("attquic.verifier_service")

DISCOVERY_PATH: Final = "/.well-known/veraison/verification"
NEW_SESSION_PATH: Final = "/challenge-response/v1/newSession"
SESSION_PATH_PREFIX: Final = "/challenge-response/v1/session/"
DISCOVERY_MEDIA_TYPE: Final = "application/vnd.veraison.discovery+json"
SESSION_MEDIA_TYPE: Final = "application/vnd.veraison.challenge-response-session+json"
PROBLEM_MEDIA_TYPE: Final = "application/problem+json"

_NONCE_MIN, _NONCE_MAX, _NONCE_DEFAULT = 8, 64, 32
_ISSUABLE_PROFILES: Final = (IETF_PROFILE, VERAISON_PROFILE)
_B64URL_NONCE = re.compile(r"[A-Za-z0-9_-]{11,86}={0,2}")


@dataclass(frozen=True)
class VerifierServiceConfig:
    """Everything the service needs; ``clock`` is injectable for tests."""

    signing_key: ECKey
    """Private P-256 key that signs EARs (ES256); its public half is published by discovery."""
    appraiser: EvidenceAppraiser
    verifier_id: VerifierId = field(
        default_factory=lambda: VerifierId("attquic", f"attquic-verifier {attquic.__version__}")
    )
    session_ttl: float = 150.0
    """Seconds a session lives after newSession (Veraison's default is 2m30s)."""
    ear_validity: float = 300.0
    """Seconds from ``iat`` to ``exp`` of each issued EAR."""
    max_evidence_size: int = 64 * 1024
    max_sessions: int = 10_000
    submodule: str = TDX_SUBMODULE
    ear_profile: str = IETF_PROFILE
    """The profile of issued EARs: draft-ietf-rats-ear-03 (default) or, for relying parties
    that only read Veraison's EARs, :data:`~attquic.ear.VERAISON_PROFILE`."""
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.ear_profile not in _ISSUABLE_PROFILES:
            raise ConfigurationError(
                f"ear_profile must be one of {list(_ISSUABLE_PROFILES)}, not {self.ear_profile!r}"
            )
        if not self.signing_key.is_private:
            raise ConfigurationError("the EAR signing key must be a private key")
        if self.session_ttl < 0 or self.ear_validity <= 0:
            raise ConfigurationError("session_ttl must be >= 0 and ear_validity > 0")
        if self.max_evidence_size <= 0 or self.max_sessions <= 0:
            raise ConfigurationError("max_evidence_size and max_sessions must be positive")


@dataclass
class _Session:
    id: str
    nonce: bytes
    expiry: float
    accept: tuple[str, ...]
    status: str = "waiting"
    evidence: tuple[str, bytes] | None = None
    result: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "nonce": b64url_encode(self.nonce),
            "expiry": _rfc3339(self.expiry),
            "accept": list(self.accept),
        }
        if self.evidence is not None:
            media_type, value = self.evidence
            out["evidence"] = {"type": media_type, "value": base64.b64encode(value).decode()}
        if self.result is not None:
            out["result"] = self.result
        return out


def _rfc3339(unix: float) -> str:
    moment = datetime.datetime.fromtimestamp(unix, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class _Problem(Exception):
    """Raised by handlers; the middleware turns it into a problem+json response."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def _problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    title = web.Response(status=status).reason
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    response = web.json_response(body, status=status, content_type=PROBLEM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


@web.middleware
async def _problems(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Problem as problem:
        return _problem_response(problem.status, problem.detail, problem.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return _problem_response(exc.status, exc.reason, headers)
    except Exception:
        _log.exception("verifier_service.internal_error", path=request.path)
        return _problem_response(500, "internal error")


def _parse_nonce(query: Any) -> bytes:
    nonce_text = query.getall("nonce", [])
    size_text = query.getall("nonceSize", [])
    if len(nonce_text) > 1 or len(size_text) > 1:
        raise _Problem(400, "nonce and nonceSize may each appear at most once")
    if nonce_text and size_text:
        raise _Problem(400, "nonce and nonceSize are mutually exclusive")
    if size_text:
        text = size_text[0]
        if not text.isascii() or not text.isdigit() or not _NONCE_MIN <= int(text) <= _NONCE_MAX:
            raise _Problem(400, f"nonceSize must be an integer in {_NONCE_MIN}..{_NONCE_MAX}")
        return secrets.token_bytes(int(text))
    if not nonce_text:
        return secrets.token_bytes(_NONCE_DEFAULT)
    text = nonce_text[0]
    if not _B64URL_NONCE.fullmatch(text):
        raise _Problem(400, "nonce must be base64url of 8..64 bytes")
    unpadded = text.rstrip("=")
    try:
        nonce = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise _Problem(400, "nonce is not valid base64url") from None
    if not _NONCE_MIN <= len(nonce) <= _NONCE_MAX or b64url_encode(nonce) != unpadded:
        raise _Problem(400, f"nonce must decode to {_NONCE_MIN}..{_NONCE_MAX} bytes")
    return nonce


class _Handlers:
    def __init__(self, config: VerifierServiceConfig) -> None:
        self.config = config
        self.sessions: dict[str, _Session] = {}
        self.accept = tuple(config.appraiser.media_types)
        self._accepted = {normalize_media_type(m): m for m in self.accept}

    # -- helpers ---------------------------------------------------------------------------

    def _purge_expired(self, now: float) -> None:
        for sid in [sid for sid, s in self.sessions.items() if now >= s.expiry]:
            del self.sessions[sid]

    def _session(self, request: web.Request) -> _Session:
        now = self.config.clock()
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            raise _Problem(404, "no such session (unknown or expired)")
        if now >= session.expiry:
            del self.sessions[session.id]
            raise _Problem(404, "no such session (unknown or expired)")
        return session

    @staticmethod
    def _session_response(session: _Session, status: int = 200) -> web.Response:
        return web.json_response(session.to_json(), status=status, content_type=SESSION_MEDIA_TYPE)

    # -- endpoints -------------------------------------------------------------------------

    async def discovery(self, request: web.Request) -> web.Response:
        body = {
            "ear-verification-key": public_jwk(self.config.signing_key),
            "media-types": list(self.accept),
            "version": f"attquic-{attquic.__version__}",
            "state": "READY",
            "api-endpoints": {"newChallengeResponseSession": NEW_SESSION_PATH},
        }
        return web.json_response(body, content_type=DISCOVERY_MEDIA_TYPE)

    async def new_session(self, request: web.Request) -> web.Response:
        nonce = _parse_nonce(request.query)
        now = self.config.clock()
        self._purge_expired(now)
        if len(self.sessions) >= self.config.max_sessions:
            raise _Problem(503, "too many live sessions", {"Retry-After": "1"})
        session = _Session(
            id=str(uuid.uuid4()),
            nonce=nonce,
            expiry=now + self.config.session_ttl,
            accept=self.accept,
        )
        self.sessions[session.id] = session
        response = self._session_response(session, status=201)
        response.headers["Location"] = SESSION_PATH_PREFIX + session.id
        return response

    async def get_session(self, request: web.Request) -> web.Response:
        return self._session_response(self._session(request))

    async def delete_session(self, request: web.Request) -> web.Response:
        session = self._session(request)
        self.sessions.pop(session.id, None)
        return web.Response(status=204)

    async def submit_evidence(self, request: web.Request) -> web.Response:
        session = self._session(request)
        content_type = request.headers.get("Content-Type", "")
        media_type = self._accepted.get(normalize_media_type(content_type))
        if media_type is None:
            raise _Problem(
                415,
                f"unsupported evidence media type {content_type!r}",
                {"Accept": ", ".join(self.accept)},
            )
        limit = self.config.max_evidence_size
        if request.content_length is not None and request.content_length > limit:
            raise _Problem(413, f"evidence larger than {limit} bytes")
        if session.status != "waiting":
            raise _Problem(409, f"session is {session.status}; evidence was already submitted")
        body = await self._read_body(request, limit)
        if not body:
            raise _Problem(400, "empty evidence")
        session.status = "processing"
        try:
            appraisal = await self.config.appraiser.appraise(
                media_type, body, session.nonce, now=self.config.clock()
            )
        except EvidenceFormatError as exc:
            session.status = "waiting"
            raise _Problem(400, str(exc)) from None
        except VerifierUnavailable as exc:
            session.status = "waiting"
            raise _Problem(503, f"cannot appraise now: {exc}", {"Retry-After": "5"}) from None
        except BaseException:
            session.status = "failed"
            raise
        session.evidence = (media_type, body)
        session.result = self._issue(session.nonce, appraisal)
        session.status = "complete"
        return self._session_response(session)

    async def _read_body(self, request: web.Request, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(16 * 1024):
            size += len(chunk)
            if size > limit:
                raise _Problem(413, f"evidence larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _issue(self, nonce: bytes, appraisal: Appraisal) -> str:
        if self.config.ear_profile == VERAISON_PROFILE:
            # Veraison's appraisals have no eat_profile/eat_nonce of their own.
            appraisal = dataclasses.replace(appraisal, profile=None, nonce=None)
        iat = int(self.config.clock())
        claims = EarClaims(
            profile=self.config.ear_profile,
            iat=iat,
            exp=iat + int(self.config.ear_validity),
            verifier_id=self.config.verifier_id,
            submods={self.config.submodule: appraisal},
            status=appraisal.status,
            nonce=nonce,
        )
        return issue_ear(claims, self.config.signing_key)


def create_app(config: VerifierServiceConfig) -> web.Application:
    """The aiohttp application serving the verification API with ``config``."""
    handlers = _Handlers(config)
    # Bodies are read by the handler with its own bound; aiohttp's bound is a backstop.
    app = web.Application(middlewares=[_problems], client_max_size=config.max_evidence_size + 1024)
    app.router.add_get(DISCOVERY_PATH, handlers.discovery)
    app.router.add_post(NEW_SESSION_PATH, handlers.new_session)
    session_path = SESSION_PATH_PREFIX + "{id}"
    app.router.add_get(session_path, handlers.get_session)
    app.router.add_post(session_path, handlers.submit_evidence)
    app.router.add_delete(session_path, handlers.delete_session)
    return app


class VerifierService:
    """Runs :func:`create_app` on a TCP socket; ``port=0`` picks a free port."""

    def __init__(self, config: VerifierServiceConfig) -> None:
        self.config = config
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening; returns the base URL (``http://host:port``)."""
        runner = web.AppRunner(create_app(self.config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        addresses: Sequence[Any] = runner.addresses
        bound_port = int(addresses[0][1]) if addresses else port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound_port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> VerifierService:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
