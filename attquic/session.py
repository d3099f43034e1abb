"""The I/O-free attestation session of one attested QUIC connection.

The session knows nothing of sockets, aioquic or asyncio. It is driven by method calls that
carry bytes and the current time, and it answers with events (:mod:`attquic.events`) that the
adapter carries out: send control bytes, produce evidence, verify evidence, close the
connection. Verification and evidence production are events precisely so that the session
never blocks: the adapter runs them off the event loop's critical path and feeds the outcome
back with :meth:`AttestationSession.evidence_ready` / :meth:`verification_succeeded` and
friends.

Rules (docs/protocol.md has the full text):

* The client sends SETUP on the control stream as soon as the handshake completes; the server
  answers with its SETUP when the client's arrives. SETUP must be each side's first frame,
  exactly once.
* A side that requires the peer's attestation sends an AUTHENTICATOR_REQUEST with an empty
  ``cmw_attestation`` offer right after its SETUP; the peer answers with an AUTHENTICATOR; the
  requester verifies it and sends RESULT.
* The gate opens when (a) every attestation this side requires verified and (b) the peer sent
  an accepted RESULT for every request it made of us. It never closes again; a failed
  re-attestation closes the connection instead.
* Any failure closes the connection with the code of :func:`attquic.errors.close_code_for`.
* Deadlines: the gate must open within ``attestation_timeout`` of the handshake, and every
  later request must be answered and verified within the same timeout.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec

from attquic import batching, expat, frames, limits, profile
from attquic.attestation import AttestationChange, AttestationResult, compare_attestations
from attquic.cmw import CMW
from attquic.ea.authenticator import ExportedAuthenticators, ValidatedAuthenticator
from attquic.ea.identity import SigningIdentity
from attquic.ea.messages import AuthenticatorRequest, Role
from attquic.errors import (
    AttestationTimeout,
    AttquicError,
    LocalError,
    PolicyRejected,
    ProtocolViolation,
    RefusedAuthenticator,
    RequestRateExceeded,
    close_code_for,
)
from attquic.events import (
    CloseConnection,
    EvidenceNeeded,
    GateOpened,
    PeerAttested,
    SendControlData,
    SessionEvent,
    VerificationNeeded,
)
from attquic.keyschedule import Binding, Exporter
from attquic.profile import ATTQUIC_2, WireProfile

__all__ = ["AttestationSession", "SessionConfiguration", "SessionState"]

_P = ParamSpec("_P")


class SessionState(enum.Enum):
    WAITING_FOR_HANDSHAKE = "waiting-for-handshake"
    ATTESTING = "attesting"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class SessionConfiguration:
    """What one side of the session does. Validated on construction."""

    is_client: bool
    attests: bool
    """This side answers the peer's requests with evidence (needs an identity)."""
    requires_peer_attestation: bool
    """This side requests and verifies the peer's attestation before opening its gate."""
    identity: SigningIdentity | None = None
    attestation_timeout: float = profile.DEFAULT_ATTESTATION_TIMEOUT
    max_frame_size: int = profile.DEFAULT_MAX_FRAME_SIZE
    attest_after_peer_verified: bool = False
    """Evidence privacy: answer the peer's request only once the peer's own attestation
    verified. Only meaningful when both sides require each other's attestation."""
    allow_attestation_change: bool | Callable[[AttestationChange], bool] = False
    """Whether a re-attestation may present another authenticator key or other measurements
    than the connection's first attestation: False (default: POLICY_REJECTED), True, or a
    callback deciding per change."""
    accept_batched_evidence: bool = True
    """As relying party, announce (SETUP bit 2) and accept batched evidence."""
    peer_reattest_burst: int = limits.DEFAULT_REATTEST_BURST
    """Requests the peer may make back to back after its initial one (:mod:`attquic.limits`)."""
    peer_reattest_interval: float = limits.DEFAULT_REATTEST_INTERVAL
    """Seconds per further request the peer earns back."""
    # last: inside the class body the name shadows the attquic.profile module
    profile: WireProfile = ATTQUIC_2
    """The wire profile: SETUP version, binder label, cmw_attestation codepoint."""

    def __post_init__(self) -> None:
        if self.attests and self.identity is None:
            raise LocalError("an attesting side needs a signing identity")
        if self.attestation_timeout <= 0:
            raise LocalError("attestation_timeout must be positive")
        if self.peer_reattest_burst < 0 or self.peer_reattest_interval <= 0:
            raise LocalError("the re-attestation limit needs burst >= 0 and interval > 0")
        if not isinstance(self.profile, WireProfile):
            raise LocalError("profile must be an attquic.profile.WireProfile")

    @property
    def cmw_extension(self) -> int:
        """The ``cmw_attestation`` codepoint of :attr:`profile`."""
        return self.profile.cmw_extension


@dataclass
class _OurRequest:
    request: AuthenticatorRequest
    deadline: float
    initial: bool
    spki: bytes = b""
    """The answering authenticator's SubjectPublicKeyInfo, once it arrived."""


@dataclass
class _PeerRequest:
    request: AuthenticatorRequest
    answered: bool = False


@dataclass
class _Pending:
    """Requests in flight, keyed by certificate_request_context."""

    ours: dict[bytes, _OurRequest] = field(default_factory=dict)
    peers: dict[bytes, _PeerRequest] = field(default_factory=dict)
    deferred: list[bytes] = field(default_factory=list)


class AttestationSession:
    """State machine of post-handshake attestation on one connection.

    After any failure the session is CLOSED and stays closed; every later call is ignored.
    """

    def __init__(self, config: SessionConfiguration) -> None:
        self._config = config
        self._role = Role.CLIENT if config.is_client else Role.SERVER
        self._state = SessionState.WAITING_FOR_HANDSHAKE
        self._events: deque[SessionEvent] = deque()
        self._decoder = frames.FrameDecoder(config.max_frame_size)
        self._ea: ExportedAuthenticators | None = None
        self._exporter: Exporter | None = None
        self._setup_sent = False
        self._peer_setup: frames.SetupFrame | None = None
        self._pending = _Pending()
        self._peer_verified = False
        self._our_accepted = False
        self._initial_deadline: float | None = None
        self._early_control: list[tuple[bytes, bool]] = []
        self._peer_contexts: set[bytes] = set()
        self._own_contexts: set[bytes] = set()
        self._peer_reattests = limits.TokenBucket(
            config.peer_reattest_burst, config.peer_reattest_interval
        )
        self.peer_result: AttestationResult | None = None
        self._first: tuple[AttestationResult, bytes] | None = None
        """The connection's first accepted attestation of the peer, and its key (SPKI)."""

    # --- inspection ---------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def gate_open(self) -> bool:
        return self._state is SessionState.OPEN

    @property
    def closed(self) -> bool:
        return self._state is SessionState.CLOSED

    def next_event(self) -> SessionEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest time at which :meth:`handle_timer` must be called."""
        if self.closed:
            return None
        deadlines = [r.deadline for r in self._pending.ours.values()]
        if self._initial_deadline is not None and not self.gate_open:
            deadlines.append(self._initial_deadline)
        return min(deadlines, default=None)

    # --- inputs -------------------------------------------------------------------------

    def prepare(self, exporter: Exporter) -> None:
        """Derive ahead what the exchange will need from ``exporter``: the RFC 9261 keys of the
        authenticators this side will send (if it attests) and validate (if it verifies).

        Optional, and only a matter of when the work is done: the adapter calls it while the
        connection waits for the peer (a server after its first flight, a client after its
        Finished and request), so that the derivation is off the path of the exchange. Before
        :meth:`handshake_completed` nothing is sent or accepted with these keys; that call
        keeps them only if it brings the same exporter.
        """
        if self.closed:
            return
        if self._ea is None:
            self._ea = self._new_authenticators(exporter)
        elif self._ea.exporter is not exporter:
            return
        self._ea.prepare_keys(own=self._config.attests, peer=self._config.requires_peer_attestation)

    def _new_authenticators(self, exporter: Exporter) -> ExportedAuthenticators:
        return ExportedAuthenticators(
            exporter, self._role, leaf_only_extensions=frozenset({self._config.cmw_extension})
        )

    def handshake_completed(self, exporter: Exporter, now: float) -> None:
        """The TLS handshake completed (server: client Finished verified)."""
        if self._state is not SessionState.WAITING_FOR_HANDSHAKE:
            return
        self._exporter = exporter
        if self._ea is None or self._ea.exporter is not exporter:
            self._ea = self._new_authenticators(exporter)
        self._state = SessionState.ATTESTING
        self._initial_deadline = now + self._config.attestation_timeout
        if self._config.is_client:
            self._guard(self._start, now)
        early, self._early_control = self._early_control, []
        for data, end_stream in early:
            self.receive_control_data(data, end_stream, now)

    def receive_control_data(self, data: bytes, end_stream: bool, now: float) -> None:
        """Bytes from the control stream, in order."""
        if self.closed:
            return
        if self._state is SessionState.WAITING_FOR_HANDSHAKE:
            self._early_control.append((data, end_stream))
            held = sum(len(chunk) for chunk, _ in self._early_control)
            if held > self._config.max_frame_size + 16:
                self._fail(ProtocolViolation("control data before the handshake completed"))
            return
        self._guard(self._receive, data, end_stream, now)

    def handle_timer(self, now: float) -> None:
        if self.closed:
            return
        deadline = self._initial_deadline
        if not self.gate_open and deadline is not None and now >= deadline:
            self._fail(AttestationTimeout("attestation did not complete in time"))
            return
        for request in self._pending.ours.values():
            if now >= request.deadline:
                self._fail(AttestationTimeout("peer did not answer an attestation request"))
                return

    def request_attestation(self, now: float) -> bytes:
        """Start a re-attestation of the peer; returns the new request's context."""
        if self.closed:
            raise LocalError("the connection is closed")
        if not self._config.requires_peer_attestation:
            raise LocalError("this side does not verify the peer's attestation")
        if self._ea is None or self._peer_setup is None:
            raise LocalError("the attestation session has not started yet")
        if self._pending.ours:  # one exchange at a time: join the one in flight
            return next(iter(self._pending.ours))
        return self._send_request(now, initial=False)

    def evidence_ready(self, context: bytes, cmw: CMW, now: float) -> None:
        """The attester produced ``cmw`` for the peer's request ``context``."""
        if self.closed:
            return
        self._guard(self._answer, context, cmw)

    def evidence_failed(self, context: bytes, error: BaseException) -> None:
        """The attester could not produce evidence: refuse with the empty authenticator.

        The peer then closes with REFUSED; our own deadline covers a peer that does not.
        """
        if self.closed:
            return
        self._guard(self._refuse, context)

    def _refuse(self, context: bytes) -> None:
        peer_request = self._pending.peers.get(context)
        if peer_request is None or peer_request.answered:
            raise LocalError("refusal for an unknown or answered request")
        assert self._ea is not None
        peer_request.answered = True
        self._send(frames.AuthenticatorFrame(self._ea.refuse(peer_request.request)))

    def verification_succeeded(self, context: bytes, result: AttestationResult, now: float) -> None:
        if self.closed:
            return
        pending = self._pending.ours.pop(context, None)
        if pending is None:
            return
        if self._first is None:
            self._first = (result, pending.spki)
        elif not self._change_allowed(result, pending.spki):
            return
        self.peer_result = result
        self._peer_verified = True
        self._send(frames.ResultFrame(context))
        self._events.append(PeerAttested(context=context, result=result, initial=pending.initial))
        self._guard(self._answer_deferred)
        self._maybe_open_gate()

    def _change_allowed(self, result: AttestationResult, spki: bytes) -> bool:
        """Re-attestation: same key and measurements as the first one, unless allowed.

        Closes the session with POLICY_REJECTED (and returns False) otherwise.
        """
        assert self._first is not None
        previous, previous_key = self._first
        change = compare_attestations(previous, result, previous_key=previous_key, current_key=spki)
        if change is None:
            return True
        allow = self._config.allow_attestation_change
        if callable(allow):
            try:
                allowed = bool(allow(change))
            except Exception as exc:  # an application callback must not open anything
                self._fail(PolicyRejected([f"attestation change callback failed: {exc!r}"]))
                return False
        else:
            allowed = allow
        if not allowed:
            self._fail(
                PolicyRejected(
                    [f"re-attestation changed {', '.join(change.changed)} since the first"]
                )
            )
        return allowed

    def verification_failed(self, context: bytes, error: BaseException) -> None:
        if not self.closed:
            self._fail(error)

    def control_stream_aborted(self, what: str) -> None:
        """The peer reset (RESET_STREAM) or stopped (STOP_SENDING) the control stream.

        Either ends the attestation protocol, before or after the gate: PROTOCOL_VIOLATION.
        """
        if not self.closed:
            self._fail(ProtocolViolation(f"the peer {what} the control stream"))

    def fail(self, error: BaseException) -> None:
        """The adapter hit ``error`` carrying out this session's events: close the connection
        with ``close_code_for(error)`` (INTERNAL_ERROR for anything but a peer's fault)."""
        if not self.closed:
            self._fail(error)

    def connection_terminated(self) -> None:
        """The connection is gone (closed by the peer or the transport): stop, emit nothing."""
        self._state = SessionState.CLOSED
        self._pending = _Pending()

    # --- internals ----------------------------------------------------------------------

    def _guard(self, func: Callable[_P, None], *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Run one input step; any attquic error closes the session with its code."""
        try:
            func(*args, **kwargs)
        except AttquicError as exc:
            self._fail(exc)

    def _fail(self, error: BaseException) -> None:
        code = close_code_for(error)
        self._state = SessionState.CLOSED
        self._pending = _Pending()
        self._events.append(
            CloseConnection(code=code, reason=str(error) or type(error).__name__, error=error)
        )

    def _send(self, frame: frames.Frame) -> None:
        self._events.append(SendControlData(frames.encode_frame(frame)))

    def _start(self, now: float) -> None:
        """Send our SETUP and, pipelined behind it, our first request (saves a round trip)."""
        self._send(
            frames.SetupFrame(
                version=self._config.profile.setup_version,
                requests_attestation=self._config.requires_peer_attestation,
                attests=self._config.attests,
                accepts_batched=self._accepts_batched,
            )
        )
        self._setup_sent = True
        if self._config.requires_peer_attestation:
            self._send_request(now, initial=True)

    def _receive(self, data: bytes, end_stream: bool, now: float) -> None:
        for frame in self._decoder.feed(data):
            self._handle_frame(frame, now)
            if self.closed:
                return
        if end_stream:
            raise ProtocolViolation("the peer closed the control stream")

    def _handle_frame(self, frame: frames.Frame, now: float) -> None:
        if isinstance(frame, frames.SetupFrame):
            self._handle_setup(frame, now)
            return
        if self._peer_setup is None:
            raise ProtocolViolation("control frame before SETUP")
        if isinstance(frame, frames.AuthenticatorRequestFrame):
            self._handle_request(frame.request, now)
        elif isinstance(frame, frames.AuthenticatorFrame):
            self._handle_authenticator(frame.authenticator, now)
        else:
            self._handle_result(frame.context)

    def _handle_setup(self, frame: frames.SetupFrame, now: float) -> None:
        if self._peer_setup is not None:
            raise ProtocolViolation("second SETUP frame")
        ours = self._config.profile
        if frame.version != ours.setup_version:
            raise ProtocolViolation(
                f"peer announced SETUP version {profile.describe_setup_version(frame.version)}, "
                f"this endpoint speaks version {ours.setup_version} ({ours.name})"
            )
        if self._config.requires_peer_attestation and not frame.attests:
            raise RefusedAuthenticator("we require the peer's attestation but it does not attest")
        self._peer_setup = frame
        if not self._setup_sent:
            self._start(now)
        self._maybe_open_gate()

    def _send_request(self, now: float, *, initial: bool) -> bytes:
        assert self._ea is not None
        request = self._ea.request(extensions=[expat.offer(self._config.cmw_extension)])
        deadline = now + self._config.attestation_timeout
        self._pending.ours[request.context] = _OurRequest(request, deadline, initial)
        self._own_contexts.add(request.context)
        self._send(frames.AuthenticatorRequestFrame(request.encode()))
        return request.context

    def _handle_request(self, data: bytes, now: float) -> None:
        assert self._peer_setup is not None
        if not self._peer_setup.requests_attestation:
            raise ProtocolViolation("authenticator request from a peer that said it would not ask")
        request = AuthenticatorRequest.decode(data)
        expected = 17 if self._role is Role.SERVER else 13
        if request.msg_type != expected:
            raise ProtocolViolation(f"a {self._peer_role} must ask with message type {expected}")
        if request.context in self._peer_contexts:
            raise ProtocolViolation("the peer reused a certificate_request_context")
        if request.context in self._own_contexts:
            raise ProtocolViolation("the peer reflected one of our request contexts")
        if len(self._pending.peers) >= profile.MAX_PEER_REQUESTS_IN_FLIGHT:
            raise ProtocolViolation("too many attestation requests in flight")
        if self._peer_contexts and not self._peer_reattests.take(now):
            raise RequestRateExceeded(
                f"more than {self._config.peer_reattest_burst} re-attestation requests, or more"
                f" than one per {self._config.peer_reattest_interval:g} s"
            )
        self._peer_contexts.add(request.context)
        if not expat.is_offered(request, self._config.cmw_extension):
            raise ProtocolViolation("authenticator request without the cmw_attestation offer")
        self._pending.peers[request.context] = _PeerRequest(request)
        if not self._config.attests:
            self._refuse(request.context)  # RFC 9261 §6: the empty authenticator
            return
        if self._config.attest_after_peer_verified and not self._peer_verified:
            self._pending.deferred.append(request.context)
            return
        self._request_evidence(request)

    @property
    def _accepts_batched(self) -> bool:
        return self._config.requires_peer_attestation and self._config.accept_batched_evidence

    @property
    def _peer_role(self) -> str:
        return "server" if self._config.is_client else "client"

    def _request_evidence(self, request: AuthenticatorRequest) -> None:
        assert self._exporter is not None and self._config.identity is not None
        assert self._peer_setup is not None
        binding = Binding.compute(
            self._exporter,
            request.context,
            self._config.identity.spki_der,
            wire_profile=self._config.profile,
        )
        self._events.append(
            EvidenceNeeded(
                context=request.context,
                binding=binding,
                peer_accepts_batched=self._peer_setup.accepts_batched,
            )
        )

    def _answer_deferred(self) -> None:
        while self._pending.deferred:
            context = self._pending.deferred.pop(0)
            self._request_evidence(self._pending.peers[context].request)

    def _answer(self, context: bytes, cmw: CMW) -> None:
        peer_request = self._pending.peers.get(context)
        if peer_request is None or peer_request.answered:
            raise LocalError("evidence for an unknown or answered request")
        assert self._ea is not None and self._config.identity is not None
        authenticator = self._ea.authenticate(
            peer_request.request,
            self._config.identity,
            leaf_extensions=[expat.leaf_extension(cmw, self._config.cmw_extension)],
        )
        peer_request.answered = True
        self._send(frames.AuthenticatorFrame(authenticator))

    def _handle_authenticator(self, data: bytes, now: float) -> None:
        assert self._ea is not None and self._exporter is not None
        # validate() consumes the request: a second authenticator for it, even while the first
        # is being verified, raises ContextReused there, before anything else happens.
        validated: ValidatedAuthenticator = self._ea.validate(data)
        pending = self._pending.ours.get(validated.context)
        if pending is None:
            raise ProtocolViolation("authenticator for a request that is not outstanding")
        pending.spki = validated.spki_der
        cmw = expat.extract(
            validated.certificate, offered=True, codepoint=self._config.cmw_extension
        )
        if cmw is None:
            # expat -04 §3.1: the attester MAY omit it; §3.3: the relying party MAY reject
            raise RefusedAuthenticator("a valid authenticator without cmw_attestation")
        binding = Binding.compute(
            self._exporter,
            validated.context,
            validated.spki_der,
            wire_profile=self._config.profile,
        )
        # batched evidence: check the proof from our own binding; the verifier then checks the
        # evidence against the batch root it leads to (BindingMismatch on any inconsistency)
        cmw, binding, _ = batching.resolve_batched(cmw, binding, accepted=self._accepts_batched)
        self._events.append(
            VerificationNeeded(
                context=validated.context, cmw=cmw, binding=binding, chain=validated.chain
            )
        )

    def _handle_result(self, context: bytes) -> None:
        peer_request = self._pending.peers.get(context)
        if peer_request is None or not peer_request.answered:
            raise ProtocolViolation("RESULT for a request we did not answer")
        del self._pending.peers[context]
        self._our_accepted = True
        self._maybe_open_gate()

    def _maybe_open_gate(self) -> None:
        if self._state is not SessionState.ATTESTING or self._peer_setup is None:
            return
        if self._config.requires_peer_attestation and not self._peer_verified:
            return
        if self._peer_setup.requests_attestation and (
            not self._our_accepted or self._pending.peers
        ):
            return
        self._state = SessionState.OPEN
        self._events.append(GateOpened())
