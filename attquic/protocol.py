"""The aioquic adapter: drives an :class:`~attquic.session.AttestationSession` and owns the gate.

This is the only place where attestation meets sockets and the event loop. It

* captures the TLS exporter (through :class:`~attquic.quic.ExportingQuicConnectionProtocol`),
* carries control-stream bytes between aioquic and the session,
* runs the attester and the verifier as eager tasks (inline up to their first suspension, see
  :mod:`attquic._eager`) and feeds their outcome back,
* holds application stream data in a bounded buffer until the gate opens, refusing streams
  past the bound and dropping DATAGRAM frames,
* closes the connection with the session's close code on any failure.

Nothing reaches the application before the gate opens: no stream, no byte, no connection
object (the server's handler and :func:`attquic.connect` wait for the gate).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from aioquic.quic import events as quic_events
from aioquic.quic.connection import QuicConnection

from attquic import profile
from attquic._eager import eager_task
from attquic.attestation import AttestationResult, BatchingAttester
from attquic.config import AttestationConfiguration
from attquic.early_data import EarlyDataBudget, EarlyDataBuffer
from attquic.errors import (
    AttquicError,
    BufferOverflow,
    CloseCode,
    ConnectionClosed,
    LocalError,
)
from attquic.events import (
    CloseConnection,
    EvidenceNeeded,
    GateOpened,
    PeerAttested,
    SendControlData,
    VerificationNeeded,
)
from attquic.pkix import AuthenticatorIdentity, validate_authenticator_certificate
from attquic.quic import ExportingQuicConnectionProtocol
from attquic.session import AttestationSession, SessionConfiguration
from attquic.streams import AttestedStream

__all__ = ["AttestedQuicProtocol"]

_connection_ids = itertools.count(1)


@dataclass
class _Timings:
    """Monotonic timestamps of one connection's attestation, for logs and benchmarks."""

    handshake_done: float | None = None
    evidence: list[float] = field(default_factory=list)
    verification: list[float] = field(default_factory=list)


class AttestedQuicProtocol(ExportingQuicConnectionProtocol):
    """aioquic protocol of an attested endpoint (client or server)."""

    def __init__(
        self,
        quic: QuicConnection,
        stream_handler: Any = None,
        *,
        attestation: AttestationConfiguration,
        on_gate_open: Callable[[AttestedQuicProtocol], None] | None = None,
        early_data_budget: EarlyDataBudget | None = None,
    ) -> None:
        super().__init__(quic, None)
        # serve()/connect() resolve the authenticator identity once; a protocol built directly
        # resolves it here
        attestation = attestation.for_endpoint(quic.configuration)
        self._config = attestation
        self._on_gate_open = on_gate_open
        is_client = quic.configuration.is_client
        self._session = AttestationSession(
            SessionConfiguration(
                is_client=is_client,
                attests=attestation.attests,
                requires_peer_attestation=attestation.requires_peer_attestation,
                identity=attestation.identity,
                attestation_timeout=attestation.attestation_timeout,
                max_frame_size=attestation.max_frame_size,
                profile=attestation.profile,
                attest_after_peer_verified=attestation.attest_after_peer_verified,
                allow_attestation_change=attestation.allow_attestation_change,
                accept_batched_evidence=attestation.accept_batched_evidence,
            )
        )
        self._streams: dict[int, AttestedStream] = {}
        # streams we opened and have not written to yet (at most the streams the peer lets
        # us open: aioquic enforces its MAX_STREAMS)
        self._unwritten: set[int] = set()
        self._transmit_handle: asyncio.Handle | None = None
        self._early = EarlyDataBuffer(attestation.early_data_limit, early_data_budget)
        self._refused: set[int] = set()
        self._accept_queue: asyncio.Queue[AttestedStream] = asyncio.Queue()
        self._gate: asyncio.Future[None] = self._loop.create_future()
        self._closed_error: ConnectionClosed | None = None
        self._session_timer: asyncio.TimerHandle | None = None
        self._reattest_timer: asyncio.TimerHandle | None = None
        self._reattest_waiters: dict[bytes, asyncio.Future[AttestationResult]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._inline = False  # an evidence/verification coroutine runs inside _spawn
        self._timings = _Timings()
        self._peer_identity: AuthenticatorIdentity | None = None
        self._log = structlog.get_logger("attquic").bind(
            conn=next(_connection_ids), role="client" if is_client else "server"
        )

    # --- public surface (wrapped by attquic.api.AttestedConnection) ----------------------

    @property
    def peer_attestation(self) -> AttestationResult | None:
        return self._session.peer_result

    @property
    def peer_identity(self) -> AuthenticatorIdentity | None:
        """How the peer's latest accepted authenticator certificate was trusted."""
        return self._peer_identity if self._session.peer_result is not None else None

    @property
    def gate_open(self) -> bool:
        return self._session.gate_open

    async def wait_attested(self) -> None:
        """Return once the gate is open; raise :class:`ConnectionClosed` if it never will."""
        await asyncio.shield(self._gate)

    async def open_stream(self) -> AttestedStream:
        self._check_usable()
        stream_id = self._quic.get_next_available_stream_id()
        # aioquic only reserves the ID once the stream exists: create it now (an empty write
        # sends nothing), or two streams opened before either sends would share one ID
        self._quic.send_stream_data(stream_id, b"", end_stream=False)
        self._unwritten.add(stream_id)
        stream = AttestedStream(self, stream_id)
        self._streams[stream_id] = stream
        return stream

    async def accept_stream(self) -> AttestedStream:
        self._check_usable()
        getter = asyncio.ensure_future(self._accept_queue.get())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        raise self._closed_error or ConnectionClosed(
            CloseCode.NO_ERROR, "connection closed", by_peer=False
        )

    async def reattest(self) -> AttestationResult:
        """Run a new attestation exchange with the peer; a failure closes the connection."""
        self._check_usable()
        context = self._session.request_attestation(self._loop.time())
        waiter = self._reattest_waiters.get(context)
        if waiter is None:
            waiter = self._reattest_waiters[context] = self._loop.create_future()
        self._pump()
        return await asyncio.shield(waiter)

    def close_with(self, code: int = CloseCode.NO_ERROR, reason: str = "") -> None:
        self.close(error_code=int(code), reason_phrase=reason)

    def _check_usable(self) -> None:
        if self._closed_error is not None:
            raise self._closed_error
        if not self._session.gate_open:
            raise LocalError("the connection is not attested yet")

    # --- stream plumbing used by AttestedStream ------------------------------------------

    def _stream_send(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if self._closed_error is not None:
            raise self._closed_error
        self._quic.send_stream_data(stream_id, data, end_stream)
        if stream_id in self._unwritten:
            # The first write on a stream we opened (a request) goes out with the next transmit,
            # at the latest in the next loop iteration: a FIN or more data written right after
            # it then shares its packet (request + FIN in one datagram saved ~0.2 ms of TTFB).
            # Only the first write: deferring every write cost the echo RTT 1-3%.
            self._unwritten.discard(stream_id)
            if not end_stream:
                self._transmit_soon()
                return
        self.transmit()

    def _transmit_soon(self) -> None:
        if self._transmit_handle is None:
            self._transmit_handle = self._loop.call_soon(self._deferred_transmit)

    def _deferred_transmit(self) -> None:
        self._transmit_handle = None
        self.transmit()

    def _stream_abort(self, stream_id: int) -> None:
        self._unwritten.discard(stream_id)
        with contextlib.suppress(ValueError, AssertionError):
            self._quic.stop_stream(stream_id, CloseCode.NO_ERROR)
            self.transmit()

    # --- aioquic events ----------------------------------------------------------------------

    def quic_event_received(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.StreamDataReceived):  # the most frequent event first
            if event.stream_id != profile.CONTROL_STREAM_ID:
                # application bytes never involve the session (before the gate they are held
                # or refused by the adapter): no session pump
                self._application_data(event.stream_id, event.data, event.end_stream)
                return
            self._session.receive_control_data(event.data, event.end_stream, self._loop.time())
        elif isinstance(event, quic_events.HandshakeCompleted):
            self._timings.handshake_done = time.perf_counter()
            super().quic_event_received(event)
            self._session.handshake_completed(self.exporter, self._loop.time())
        else:
            self._other_event(event)
            return  # nothing the session reacts to: skip the pump (7 ConnectionIdIssued a side)
        # aioquic transmits once after every batch of events (datagram_received and
        # _handle_timer call transmit() right after _process_events): transmitting per event
        # as well cost ~15 µs per event (benchmarks: handshake and bulk receive).
        self._pump(transmit=False)

    def _other_event(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.DatagramFrameReceived):
            self._log.debug("datagram.dropped", size=len(event.data))
        elif isinstance(event, quic_events.StreamReset):
            self._stream_reset(event.stream_id, event.error_code)
        elif isinstance(event, quic_events.ConnectionTerminated):
            self._terminated(event)
            super().quic_event_received(event)
        else:
            super().quic_event_received(event)

    def _application_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if stream_id in self._refused:
            return  # aioquic keeps delivering until the peer's reset arrives
        if self._session.gate_open:
            self._deliver(stream_id, data, end_stream)
            return
        if self._session.closed:
            return
        if not self._early.hold(stream_id, data, end_stream):
            self._refuse_stream(stream_id)

    def _refuse_stream(self, stream_id: int) -> None:
        self._early.drop(stream_id)
        self._refused.add(stream_id)
        self._log.warning("early_data.refused", stream_id=stream_id)
        code = int(BufferOverflow.close_code)
        with contextlib.suppress(ValueError, AssertionError):
            self._quic.stop_stream(stream_id, code)
        with contextlib.suppress(ValueError, AssertionError):
            self._quic.reset_stream(stream_id, code)

    def _deliver(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._streams[stream_id] = AttestedStream(self, stream_id)
            self._accept_queue.put_nowait(stream)
        stream._feed(data, end_stream)

    def _stream_reset(self, stream_id: int, error_code: int) -> None:
        self._early.drop(stream_id)
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream._fail(ConnectionResetError(f"stream reset by peer (code {error_code})"))

    def _terminated(self, event: quic_events.ConnectionTerminated) -> None:
        if self._closed_error is None:
            self._closed_error = ConnectionClosed(
                event.error_code, event.reason_phrase, by_peer=True
            )
        self._shutdown(self._closed_error)

    # --- session events ----------------------------------------------------------------------

    def _pump(self, *, transmit: bool = True) -> None:
        """Carry out every pending session event, then transmit and re-arm the timer.

        ``transmit=False`` when aioquic is about to transmit anyway (inside its event loop).
        """
        while (event := self._session.next_event()) is not None:
            if isinstance(event, SendControlData):
                self._quic.send_stream_data(profile.CONTROL_STREAM_ID, event.data, False)
            elif isinstance(event, EvidenceNeeded):
                self._spawn(self._produce_evidence(event))
            elif isinstance(event, VerificationNeeded):
                self._spawn(self._verify(event))
            elif isinstance(event, PeerAttested):
                self._peer_attested(event)
            elif isinstance(event, GateOpened):
                self._open_gate()
            elif isinstance(event, CloseConnection):
                self._close_for(event)
        if transmit:
            self.transmit()
        self._arm_session_timer()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` inline up to its first suspension (an eager task), then as a task.

        An attester or verifier that does not suspend finishes here, and its output leaves in
        the transmit that follows the pump, instead of one loop iteration and one transmit
        later. The coroutine does not transmit (nor pump) while it runs inline: the pump that
        spawned it carries out its events.
        """
        outer, self._inline = self._inline, True
        try:
            task = eager_task(self._loop, coro)
        finally:
            self._inline = outer
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._log.error("task.failed", error=repr(error))  # retrieved: nothing escapes

    def _after_task_step(self) -> None:
        """The end of an evidence/verification coroutine: pump its events, unless it ran inline
        inside a pump (which then carries them out itself)."""
        if not self._inline:
            self._pump()

    async def _produce_evidence(self, event: EvidenceNeeded) -> None:
        attester = self._config.attester
        assert attester is not None
        started = time.perf_counter()
        try:
            if event.peer_accepts_batched and isinstance(attester, BatchingAttester):
                cmw = await attester.attest_batched(event.binding)
            else:
                cmw = await attester.attest(event.binding)
        except Exception as exc:  # any attester failure is ours: INTERNAL_ERROR
            self._log.error("evidence.failed", error=repr(exc))
            self._session.evidence_failed(event.context, exc)
        else:
            self._timings.evidence.append(time.perf_counter() - started)
            self._session.evidence_ready(event.context, cmw, self._loop.time())
        self._after_task_step()

    async def _verify(self, event: VerificationNeeded) -> None:
        verifier = self._config.verifier
        assert verifier is not None
        started = time.perf_counter()
        try:
            now = self._config.clock()
            identity = validate_authenticator_certificate(
                event.chain,
                now=now,
                attester_is_server=self._quic.configuration.is_client,
                tls_certificate=self.tls_peer_certificate,
                tls_verified=self.tls_peer_verified,
                trust_store=self._config.trust_store,
                accept_evidence_only=self._config.accept_evidence_only_identity,
            )
            self._log.debug("authenticator.identity", identity=identity.value)
            result = await verifier.verify(event.cmw, event.binding, now=now)
        except AttquicError as exc:
            self._session.verification_failed(event.context, exc)
        except Exception as exc:  # a verifier bug must fail closed, never open the gate
            self._log.error("verifier.crashed", error=repr(exc))
            self._session.verification_failed(event.context, exc)
        else:
            self._timings.verification.append(time.perf_counter() - started)
            self._peer_identity = identity
            self._session.verification_succeeded(event.context, result, self._loop.time())
        self._after_task_step()

    def _peer_attested(self, event: PeerAttested) -> None:
        timings = self._timings
        since_handshake = (
            None
            if timings.handshake_done is None
            else round((time.perf_counter() - timings.handshake_done) * 1000, 3)
        )
        self._log.info(
            "attestation.accepted",
            context=event.context.hex()[:16],
            initial=event.initial,
            result=type(event.result).__name__,
            ms_since_handshake=since_handshake if event.initial else None,
            ms_verification=round(timings.verification[-1] * 1000, 3)
            if timings.verification
            else None,
        )
        waiter = self._reattest_waiters.pop(event.context, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(event.result)
        self._arm_reattest_timer()

    def _open_gate(self) -> None:
        self._log.info(
            "gate.opened",
            ms_evidence=[round(t * 1000, 3) for t in self._timings.evidence],
            held_bytes=self._early.size,
        )
        for stream_id, chunks in self._early.take().items():
            for data, end_stream in chunks:
                self._deliver(stream_id, data, end_stream)
        if not self._gate.done():
            self._gate.set_result(None)
        if self._on_gate_open is not None:
            self._on_gate_open(self)

    def _close_for(self, event: CloseConnection) -> None:
        self._log.warning(
            "attestation.failed",
            code=CloseCode(event.code).name,
            reason=event.reason,
            error=type(event.error).__name__,
        )
        self._closed_error = ConnectionClosed(event.code, event.reason, by_peer=False)
        self._closed_error.__cause__ = event.error
        self._quic.close(error_code=int(event.code), reason_phrase=event.reason)
        self._shutdown(self._closed_error)

    def _shutdown(self, error: ConnectionClosed) -> None:
        self._early.clear()  # held data never reaches the application of a failed connection
        self._unwritten.clear()
        if not self._gate.done():
            self._gate.set_exception(error)
            self._gate.exception()  # mark retrieved: a failed handshake is not a leak
        for waiter in self._reattest_waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()
        self._reattest_waiters.clear()
        for stream in self._streams.values():
            stream._fail(error)
        for timer in (self._session_timer, self._reattest_timer):
            if timer is not None:
                timer.cancel()
        self._session.connection_terminated()
        for task in list(self._tasks):
            task.cancel()

    # --- timers ------------------------------------------------------------------------------

    def _arm_session_timer(self) -> None:
        when = self._session.get_timer()
        if self._session_timer is not None:
            if when is not None and self._session_timer.when() == when:
                return  # already armed for that deadline (the common case, once per event)
            self._session_timer.cancel()
            self._session_timer = None
        if when is not None:
            self._session_timer = self._loop.call_at(when, self._on_session_timer)

    def _on_session_timer(self) -> None:
        self._session_timer = None
        self._session.handle_timer(self._loop.time())
        self._pump()

    def _arm_reattest_timer(self) -> None:
        interval = self._config.reattest_interval
        if interval is None or self._session.closed:
            return
        if self._reattest_timer is not None:
            self._reattest_timer.cancel()
        self._reattest_timer = self._loop.call_later(interval, self._on_reattest_timer)

    def _on_reattest_timer(self) -> None:
        self._reattest_timer = None
        if self._session.closed:
            return
        self._log.info("reattestation.periodic")
        self._session.request_attestation(self._loop.time())
        self._pump()
