"""The aioquic adapter: drives an :class:`~attquic.session.AttestationSession` and owns the gate.

This is the only place where attestation meets sockets and the event loop. It

* captures the TLS exporter (through :class:`~attquic.quic.ExportingQuicConnectionProtocol`),
* carries control-stream bytes between aioquic and the session,
* runs the attester and the verifier as eager tasks (inline up to their first suspension, see
  :mod:`attquic._eager`) and feeds their outcome back,
* holds application stream data in a bounded buffer until the gate opens, refusing streams
  past the bound and dropping DATAGRAM frames,
* closes the connection with the session's close code on any failure, and with
  PROTOCOL_VIOLATION when the peer resets or stops the control stream,
* tracks application streams and forgets each once both its directions are done,
* holds its transmits for two loop iterations when its gate opens, so that what is still to
  be sent (the RESULT) leaves with the application's first request (:meth:`_cork`).

Nothing raises out of this adapter into aioquic or the event loop: an unexpected exception while
handling a QUIC event, a timer or a task closes the connection with INTERNAL_ERROR, and the
session's queued events are still carried out and its timer re-armed.

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
from typing import Any, Final, TypeVar, cast

from aioquic.quic import events as quic_events
from aioquic.quic.connection import QuicConnection

from attquic import profile
from attquic._eager import eager_task
from attquic._reraise import fresh_copy
from attquic.attestation import AttestationResult, BatchingAttester
from attquic.config import AttestationConfiguration
from attquic.early_data import EarlyDataBudget, EarlyDataBuffer
from attquic.errors import (
    AttquicError,
    BufferOverflow,
    CloseCode,
    ConnectionClosed,
    LocalError,
    StreamStopped,
)
from attquic.events import (
    CloseConnection,
    EvidenceNeeded,
    GateOpened,
    PeerAttested,
    SendControlData,
    VerificationNeeded,
)
from attquic.logs import get_logger
from attquic.pkix import AuthenticatorIdentity, validate_authenticator_certificate
from attquic.quic import ExportingQuicConnectionProtocol
from attquic.quic.release import release_terminated
from attquic.session import AttestationSession, SessionConfiguration
from attquic.streams import (
    AttestedReceiveStream,
    AttestedSendStream,
    AttestedStream,
    PeerStreamIds,
    is_unidirectional,
)

__all__ = ["MAX_PENDING_RECEIVE_STREAMS", "AttestedQuicProtocol"]

_StreamDataReceived = quic_events.StreamDataReceived
_connection_ids = itertools.count(1)
_LOG = get_logger("attquic")  # bound per connection (binding a fresh logger cost ~6 us more)

#: The peer's unidirectional streams waiting for ``accept_receive_stream()``; more are refused
#: (STOP_SENDING with BUFFER_OVERFLOW). Bidirectional streams need no such cap: QUIC's stream
#: limit already bounds them, since they stay open until this side finishes them.
MAX_PENDING_RECEIVE_STREAMS = 128

_Stream = AttestedStream | AttestedReceiveStream | AttestedSendStream
_Accepted = TypeVar("_Accepted", AttestedStream, AttestedReceiveStream)

#: Close codes with which a verifying peer says it did not accept our attestation.
_REJECTIONS_OF_OUR_EVIDENCE: Final = frozenset(
    {
        CloseCode.REFUSED,
        CloseCode.BINDING_MISMATCH,
        CloseCode.EVIDENCE_INVALID,
        CloseCode.POLICY_REJECTED,
        CloseCode.VERIFIER_UNAVAILABLE,
        CloseCode.TIMEOUT,
        CloseCode.CERTIFICATE_REJECTED,
    }
)


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
        self._event_loop = asyncio.get_running_loop()
        # serve()/connect() resolve the authenticator identity once; a protocol built directly
        # resolves it here
        attestation = attestation.for_endpoint(quic.configuration)
        self._config = attestation
        # what isinstance(attester, BatchingAttester) checks, without the runtime-checkable
        # Protocol's walk of its members (~30 us per connection on 3.11)
        attester = attestation.attester
        self._batching_attester: BatchingAttester | None = (
            cast(BatchingAttester, attester)
            if callable(getattr(attester, "attest_batched", None))
            else None
        )
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
                peer_reattest_burst=attestation.peer_reattest_burst,
                peer_reattest_interval=attestation.peer_reattest_interval,
            )
        )
        self._is_client = is_client
        self._streams: dict[int, _Stream] = {}
        """Streams with a direction still open; each removes itself once both are done."""
        self._peer_ids = PeerStreamIds()
        # bidirectional streams not written to yet, ours and the peer's (at most the open
        # streams QUIC's MAX_STREAMS allows; each leaves at its first write or its release)
        self._unwritten: set[int] = set()
        self._transmit_handle: asyncio.Handle | None = None
        self._corked = False
        """Transmits wait: the gate just opened and the application's first write is due."""
        self._refused = 0
        """Streams refused so far (for logs: only the first refusal is a warning)."""
        if not is_client:
            self._peer_ids.mark_seen(profile.CONTROL_STREAM_ID)  # never an application stream
        self._early = EarlyDataBuffer(attestation.early_data_limit, early_data_budget)
        self._accept_queue: asyncio.Queue[AttestedStream] = asyncio.Queue()
        self._accept_receive_queue: asyncio.Queue[AttestedReceiveStream] = asyncio.Queue()
        # True once the gate opened / the handshake completed, False if the connection ended
        # first (no exception in them: see _reraise)
        self._gate: asyncio.Future[bool] = self._event_loop.create_future()
        self._ended = asyncio.Event()
        self._handshake: asyncio.Future[bool] = self._event_loop.create_future()
        self._closed_error: ConnectionClosed | None = None
        self._session_timer: asyncio.TimerHandle | None = None
        self._reattest_timer: asyncio.TimerHandle | None = None
        self._reattest_waiters: dict[bytes, asyncio.Future[AttestationResult]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._inline = False  # an evidence/verification coroutine runs inside _spawn
        self._timings = _Timings()
        self._peer_identity: AuthenticatorIdentity | None = None
        self._termination: quic_events.ConnectionTerminated | None = None
        self._closed_locally = False
        self._peer: str | None = None
        self._held_logs: list[tuple[str, dict[str, Any]]] = []
        self._prepared = False
        """The session was given the exporter to derive ahead (_prepare_exchange)."""
        """INFO events waiting for this side's next transmit (see _log_after_transmit)."""
        self._log = _LOG.bind(conn=next(_connection_ids), role="client" if is_client else "server")

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

    @property
    def peer_address(self) -> str | None:
        """``host:port`` of the peer, once its first datagram arrived."""
        return self._peer

    @property
    def termination(self) -> quic_events.ConnectionTerminated | None:
        """aioquic's termination event (code, frame type, reason), once the connection ended."""
        return self._termination

    async def wait_handshake(self) -> None:
        """Return once the QUIC/TLS handshake completed; raise :class:`ConnectionClosed` if the
        connection ended first (:attr:`termination` says how)."""
        if not await asyncio.shield(self._handshake):
            raise self._closed_exception()

    async def wait_attested(self) -> None:
        """Return once the gate is open; raise :class:`ConnectionClosed` if it never will."""
        if not await asyncio.shield(self._gate):
            raise self._closed_exception()

    async def open_stream(self) -> AttestedStream:
        stream = AttestedStream(self, self._open_local_stream(unidirectional=False))
        self._streams[stream.stream_id] = stream
        return stream

    async def open_send_stream(self) -> AttestedSendStream:
        stream = AttestedSendStream(self, self._open_local_stream(unidirectional=True))
        self._streams[stream.stream_id] = stream
        return stream

    def _open_local_stream(self, *, unidirectional: bool) -> int:
        self._check_usable()
        stream_id = self._quic.get_next_available_stream_id(is_unidirectional=unidirectional)
        # aioquic only reserves the ID once the stream exists: create it now (an empty write
        # sends nothing), or two streams opened before either sends would share one ID
        self._quic.send_stream_data(stream_id, b"", end_stream=False)
        self._unwritten.add(stream_id)
        return stream_id

    async def accept_stream(self) -> AttestedStream:
        return await self._accept(self._accept_queue)

    async def accept_receive_stream(self) -> AttestedReceiveStream:
        return await self._accept(self._accept_receive_queue)

    async def _accept(self, queue: asyncio.Queue[_Accepted]) -> _Accepted:
        self._check_usable()
        if not queue.empty():
            # the common case on a server: the request came with the packet that opened the
            # gate, before the handler ran; no waiter tasks, no loop iterations
            return queue.get_nowait()
        getter = asyncio.ensure_future(queue.get())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({getter, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        raise self._closed_exception()

    async def reattest(self) -> AttestationResult:
        """Run a new attestation exchange with the peer; a failure closes the connection."""
        self._check_usable()
        context = self._session.request_attestation(self._event_loop.time())
        waiter = self._reattest_waiters.get(context)
        if waiter is None:
            waiter = self._reattest_waiters[context] = self._event_loop.create_future()
        self._pump()
        return await asyncio.shield(waiter)

    def close_with(self, code: int = CloseCode.NO_ERROR, reason: str = "") -> None:
        self.close(error_code=int(code), reason_phrase=reason)

    def close(self, error_code: int = CloseCode.NO_ERROR, reason_phrase: str = "") -> None:
        self._closed_locally = True  # whatever closes it (us, api.connect's exit): not the peer
        if self._corked:  # what the gate held (the RESULT) leaves before the close
            self._corked = False
            super().transmit()
        self._flush_logs()
        super().close(error_code=error_code, reason_phrase=reason_phrase)

    def transmit(self) -> None:
        if self._corked:
            return  # held after the gate opened: see _cork
        super().transmit()
        if self._held_logs:
            self._flush_logs()
        if not self._prepared and self._exporter_capture.captured:
            # the first transmit with the exporter known: a server's first flight, a client's
            # Finished with its request. The peer answers no sooner than one round trip later.
            self._prepared = True
            self._event_loop.call_soon(self._prepare_exchange)

    def _prepare_exchange(self) -> None:
        """Derive the exchange's authenticator keys while waiting for the peer (in the live loop
        they cost 0.08-0.13 ms on the path to the gate when derived on first use)."""
        try:
            self._session.prepare(self.exporter)
        except Exception as exc:
            self._internal_failure(exc)
            self._pump()

    def _log_after_transmit(self, event: str, **fields: Any) -> None:
        """Log an INFO ``event`` right after this side's next transmit (or its end).

        The gate's events (attestation.accepted, gate.opened) come while the packets the peer
        waits for (the RESULT, the first request or answer) wait for their transmit, which the
        gate holds for at most two loop iterations (_cork). Emitted there, each record cost that
        path 60-170 us in the live loop (the logging code runs cold once per connection);
        emitted after the transmit, the peer is already working on the packets. The record is
        otherwise the same; this connection's later events, and its end, flush it first.
        """
        self._held_logs.append((event, fields))

    def _flush_logs(self) -> None:
        held, self._held_logs = self._held_logs, []
        for event, fields in held:
            self._log.info(event, **fields)

    def _closed_exception(self) -> ConnectionClosed:
        """The error to raise now that the connection is closed (a fresh copy: see _reraise)."""
        if self._closed_error is None:  # not reached: set before anything waits on the end
            return ConnectionClosed(CloseCode.NO_ERROR, "connection closed", by_peer=False)
        return fresh_copy(self._closed_error)

    def _check_usable(self) -> None:
        if self._closed_error is not None:
            raise self._closed_exception()
        if not self._session.gate_open:
            raise LocalError("the connection is not attested yet")

    # --- stream plumbing used by AttestedStream ------------------------------------------

    def _stream_send(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if self._closed_error is not None:
            raise self._closed_exception()
        try:
            self._quic.send_stream_data(stream_id, data, end_stream)
        except (RuntimeError, ValueError, AssertionError) as exc:
            # aioquic refuses writes on a stream the peer stopped before we saw its event
            raise StreamStopped(f"stream {stream_id} cannot send: {exc}") from exc
        self._corked = False  # the first write after the gate carries what waited for it
        if stream_id in self._unwritten:
            # The first write on a stream (a request, or the answer on the peer's stream) goes
            # out with the next transmit, at the latest in the next loop iteration: a FIN or more
            # data written right after it then shares its packet (request + FIN in one datagram
            # saved ~0.2 ms of TTFB; an answer + FIN, one datagram less for the peer to read
            # before its first byte). Only the first write: deferring every write cost the echo
            # RTT 1-3%.
            self._unwritten.discard(stream_id)
            if not end_stream:
                self._transmit_soon()
                return
        self.transmit()

    def _transmit_soon(self) -> None:
        if self._transmit_handle is None:
            self._transmit_handle = self._event_loop.call_soon(self._deferred_transmit)

    def _deferred_transmit(self) -> None:
        self._transmit_handle = None
        self.transmit()

    def _stream_stop(self, stream_id: int) -> None:
        self._unwritten.discard(stream_id)
        with contextlib.suppress(ValueError, AssertionError):  # already finished in aioquic
            self._quic.stop_stream(stream_id, CloseCode.NO_ERROR)
            self.transmit()

    def _stream_finished(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)
        self._unwritten.discard(stream_id)

    def _is_peer_stream(self, stream_id: int) -> bool:
        return bool(stream_id & 0x1) == self._is_client

    # --- aioquic events ----------------------------------------------------------------------

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        if self._peer is None:  # the first datagram names the peer for every later log line
            host, port = addr[0], addr[1]
            host = host.removeprefix("::ffff:")
            self._peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            self._log = self._log.bind(peer=self._peer)
        super().datagram_received(data, addr)

    def quic_event_received(self, event: quic_events.QuicEvent) -> None:
        try:
            if type(event) is _StreamDataReceived and self._session.gate_open:
                # Most of a connection's events: bytes of an open application stream after the
                # gate, straight to it (the control stream and new streams are never in
                # _streams: they take the general path). In a bulk receive this is one call
                # per datagram instead of five.
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream._feed(event.data, event.end_stream)
                    return
            if not self._quic_event(event):
                return  # nothing the session reacts to: skip the pump (7 ConnectionIdIssued a side)
        except Exception as exc:  # nothing may escape into aioquic's datagram callback
            self._internal_failure(exc)
        # aioquic transmits once after every batch of events (datagram_received and
        # _handle_timer call transmit() right after _process_events): transmitting per event
        # as well cost ~15 µs per event (benchmarks: handshake and bulk receive).
        self._pump(transmit=False)

    def _quic_event(self, event: quic_events.QuicEvent) -> bool:
        """Handle one aioquic event; True when the session may have events to carry out."""
        if isinstance(event, quic_events.StreamDataReceived):  # the most frequent event first
            if event.stream_id != profile.CONTROL_STREAM_ID:
                # application bytes never involve the session (before the gate they are held
                # or refused by the adapter): no session pump
                self._application_data(event.stream_id, event.data, event.end_stream)
                return False
            self._session.receive_control_data(
                event.data, event.end_stream, self._event_loop.time()
            )
            return True
        if isinstance(event, quic_events.HandshakeCompleted):
            self._timings.handshake_done = time.perf_counter()
            super().quic_event_received(event)
            if not self._handshake.done():
                self._handshake.set_result(True)
            self._session.handshake_completed(self.exporter, self._event_loop.time())
            return True
        return self._other_event(event)

    def _other_event(self, event: quic_events.QuicEvent) -> bool:
        if isinstance(event, quic_events.DatagramFrameReceived):
            self._log.debug("datagram.dropped", size=len(event.data))
        elif isinstance(event, quic_events.StreamReset):
            return self._stream_reset(event.stream_id, event.error_code)
        elif isinstance(event, quic_events.StopSendingReceived):
            return self._stop_sending(event.stream_id, event.error_code)
        elif isinstance(event, quic_events.ConnectionTerminated):
            self._terminated(event)
            super().quic_event_received(event)
        else:
            super().quic_event_received(event)
        return False

    def _application_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if self._session.gate_open:
            self._deliver(stream_id, data, end_stream)
            return
        if self._session.closed:
            return
        if stream_id not in self._early and not self._peer_ids.is_new(stream_id):
            return  # refused or reset: aioquic keeps delivering until the peer's reset arrives
        if not self._early.hold(stream_id, data, end_stream):
            self._refuse_stream(stream_id)

    def _refuse_stream(self, stream_id: int) -> None:
        """STOP_SENDING + RESET_STREAM with BUFFER_OVERFLOW; later bytes on it are dropped."""
        self._early.drop(stream_id)
        self._peer_ids.mark_seen(stream_id)
        self._refused += 1
        # one warning per connection: a flood of refused streams must not flood the logs
        self._flush_logs()
        log = self._log.warning if self._refused == 1 else self._log.debug
        log("stream.refused", stream_id=stream_id, refused=self._refused)
        code = int(BufferOverflow.close_code)
        with contextlib.suppress(ValueError, AssertionError):  # already finished in aioquic
            self._quic.stop_stream(stream_id, code)
        with contextlib.suppress(ValueError, AssertionError):  # or receive-only for us
            self._quic.reset_stream(stream_id, code)

    def _deliver(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._new_peer_stream(stream_id)
            if stream is None:
                return  # a stream we released or refused: its late bytes are dropped
        stream._feed(data, end_stream)  # our own unidirectional streams drop it (never readable)

    def _new_peer_stream(self, stream_id: int) -> AttestedStream | AttestedReceiveStream | None:
        if not self._is_peer_stream(stream_id) or not self._peer_ids.is_new(stream_id):
            return None
        if not is_unidirectional(stream_id):
            self._peer_ids.mark_seen(stream_id)
            stream = self._streams[stream_id] = AttestedStream(self, stream_id)
            self._unwritten.add(stream_id)
            self._accept_queue.put_nowait(stream)
            return stream
        if self._accept_receive_queue.qsize() >= MAX_PENDING_RECEIVE_STREAMS:
            self._refuse_stream(stream_id)
            return None
        self._peer_ids.mark_seen(stream_id)
        receive = AttestedReceiveStream(self, stream_id)
        self._streams[stream_id] = receive
        self._accept_receive_queue.put_nowait(receive)
        return receive

    def _stream_reset(self, stream_id: int, error_code: int) -> bool:
        """RESET_STREAM from the peer; True when the session must act (the control stream)."""
        if stream_id == profile.CONTROL_STREAM_ID:
            self._session.control_stream_aborted("reset (RESET_STREAM)")
            return True
        self._early.drop(stream_id)
        stream = self._streams.get(stream_id)
        if stream is not None and not isinstance(stream, AttestedSendStream):
            stream._peer_reset(error_code)
        elif stream is None and self._is_peer_stream(stream_id):
            self._peer_ids.mark_seen(stream_id)  # opened and abandoned: never handed out
        return False

    def _stop_sending(self, stream_id: int, error_code: int) -> bool:
        """STOP_SENDING from the peer; True when the session must act (the control stream)."""
        if stream_id == profile.CONTROL_STREAM_ID:
            self._session.control_stream_aborted("stopped (STOP_SENDING)")
            return True
        stream = self._streams.get(stream_id)
        if stream is not None and not isinstance(stream, AttestedReceiveStream):
            stream._peer_stopped(error_code)
        return False

    def _terminated(self, event: quic_events.ConnectionTerminated) -> None:
        self._termination = event
        if self._closed_error is None:
            self._closed_error = ConnectionClosed(
                event.error_code, event.reason_phrase, by_peer=not self._closed_locally
            )
            if not self._closed_locally:
                self._log_termination(event)
        self._shutdown(self._closed_error)
        # after aioquic's own handling of the event: nothing calls into the connection again
        self._event_loop.call_soon(release_terminated, self)

    def _log_termination(self, event: quic_events.ConnectionTerminated) -> None:
        """Say why the peer (or QUIC) ended the connection; a rejection of ours is a warning."""
        self._flush_logs()
        if event.frame_type is not None:  # a QUIC transport close: handshake, idle timeout...
            self._log.info(
                "connection.terminated",
                quic_error=f"0x{event.error_code:x}",
                reason=event.reason_phrase,
            )
            return
        try:
            code = CloseCode(event.error_code)
        except ValueError:
            self._log.info(
                "connection.closed_by_peer",
                code=f"0x{event.error_code:x}",
                reason=event.reason_phrase,
            )
            return
        if code is CloseCode.NO_ERROR:
            self._log.info("connection.closed_by_peer", code=code.name)
        elif self._config.attests and code in _REJECTIONS_OF_OUR_EVIDENCE:
            self._log.warning(
                "attestation.rejected_by_peer", code=code.name, reason=event.reason_phrase
            )
        else:
            self._log.warning(
                "connection.closed_by_peer", code=code.name, reason=event.reason_phrase
            )

    # --- session events ----------------------------------------------------------------------

    def _pump(self, *, transmit: bool = True) -> None:
        """Carry out every pending session event, then transmit and re-arm the timer.

        ``transmit=False`` when aioquic is about to transmit anyway (inside its event loop).
        An event that fails to carry out closes the connection (INTERNAL_ERROR); the events
        queued behind it are still carried out, and the timer is armed whatever happened.
        """
        try:
            while (event := self._session.next_event()) is not None:
                try:
                    self._carry_out(event)
                except Exception as exc:
                    self._internal_failure(exc)
            if self._session.closed and self._closed_error is None:
                self._force_close()  # carrying out the session's close itself failed
        finally:
            self._arm_session_timer()
            if transmit:
                self.transmit()

    def _carry_out(self, event: object) -> None:
        if isinstance(event, SendControlData):
            self._quic.send_stream_data(profile.CONTROL_STREAM_ID, event.data, False)
        elif isinstance(event, EvidenceNeeded):
            # What is pending leaves first (on the first exchange: the ACK of the peer's
            # Finished, HANDSHAKE_DONE, new connection IDs): the peer handles it while the
            # evidence is made, instead of with the first packet of the answer.
            self.transmit()
            self._spawn(self._produce_evidence(event))
        elif isinstance(event, VerificationNeeded):
            self._spawn(self._verify(event))
        elif isinstance(event, PeerAttested):
            self._peer_attested(event)
        elif isinstance(event, GateOpened):
            self._open_gate()
        elif isinstance(event, CloseConnection):
            self._close_for(event)

    def _internal_failure(self, error: Exception) -> None:
        """An unexpected exception in this adapter: close with INTERNAL_ERROR, never raise.

        The session queues the CloseConnection; every caller pumps afterwards.
        """
        self._log.error("adapter.failed", error=repr(error), exc_info=error)
        self._session.fail(error)

    def _force_close(self) -> None:
        self._closed_error = ConnectionClosed(
            CloseCode.INTERNAL_ERROR, "internal error", by_peer=False
        )
        with contextlib.suppress(Exception):
            self._quic.close(error_code=CloseCode.INTERNAL_ERROR, reason_phrase="internal error")
        self._shutdown(self._closed_error)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` inline up to its first suspension (an eager task), then as a task.

        An attester or verifier that does not suspend finishes here, and its output leaves in
        the transmit that follows the pump, instead of one loop iteration and one transmit
        later. The coroutine does not transmit (nor pump) while it runs inline: the pump that
        spawned it carries out its events.
        """
        outer, self._inline = self._inline, True
        try:
            task = eager_task(self._event_loop, coro)
        finally:
            self._inline = outer
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A task's exception is retrieved here (never "never retrieved") and closes the
        connection (INTERNAL_ERROR). Done callbacks run from the loop, never inside a pump."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, Exception):
            self._internal_failure(error)
            self._pump()
        elif error is not None:
            self._log.error("task.failed", error=repr(error))

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
            if event.peer_accepts_batched and self._batching_attester is not None:
                cmw = await self._batching_attester.attest_batched(event.binding)
            else:
                cmw = await attester.attest(event.binding)
        except Exception as exc:  # any attester failure is ours: INTERNAL_ERROR
            self._log.error("evidence.failed", error=repr(exc))
            self._session.evidence_failed(event.context, exc)
        else:
            self._timings.evidence.append(time.perf_counter() - started)
            self._session.evidence_ready(event.context, cmw, self._event_loop.time())
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
            self._session.verification_succeeded(event.context, result, self._event_loop.time())
        self._after_task_step()

    def _peer_attested(self, event: PeerAttested) -> None:
        timings = self._timings
        since_handshake = (
            None
            if timings.handshake_done is None
            else round((time.perf_counter() - timings.handshake_done) * 1000, 3)
        )
        self._log_after_transmit(
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
        self._log_after_transmit(
            "gate.opened",
            ms_evidence=[round(t * 1000, 3) for t in self._timings.evidence],
            held_bytes=self._early.size,
        )
        for stream_id, chunks in self._early.take().items():
            for data, end_stream in chunks:
                self._deliver(stream_id, data, end_stream)
        if not self._gate.done():
            self._gate.set_result(True)
        if self._on_gate_open is not None:
            self._on_gate_open(self)
        self._cork()

    def _cork(self) -> None:
        """Hold this side's transmits until the application has had its first step.

        The gate opens while something is still to be sent (the RESULT that opened it, ACKs)
        and the application is about to send its first request. The gate's waiters run two
        loop iterations later (the shield's callback, then the waiting task); holding the
        transmit that long lets both leave in one datagram, so the peer opens its gate and reads
        the request from one packet instead of two (docs/benchmarks.md). The application's first
        write ends the hold at once; without one, the held packets leave after the two
        iterations, or before the CONNECTION_CLOSE when the application closes at once.
        """
        self._corked = True
        self._event_loop.call_soon(self._uncork_after, 1)

    def _uncork_after(self, iterations: int) -> None:
        if not self._corked:
            return  # a write or the connection's end already ended the hold
        if iterations:
            self._event_loop.call_soon(self._uncork_after, iterations - 1)
            return
        self._corked = False
        self.transmit()

    def _close_for(self, event: CloseConnection) -> None:
        self._flush_logs()
        self._log.warning(
            "attestation.failed",
            code=CloseCode(event.code).name,
            reason=event.reason,
            error=type(event.error).__name__,
        )
        self._closed_error = ConnectionClosed(event.code, event.reason, by_peer=False)
        # the cause without its traceback, whose frames (this adapter's among them) would tie
        # the connection to itself (an adapter failure was logged with it, _internal_failure)
        self._closed_error.__cause__ = fresh_copy(event.error)
        self._quic.close(error_code=int(event.code), reason_phrase=event.reason)
        self._shutdown(self._closed_error)

    def _shutdown(self, error: ConnectionClosed) -> None:
        self._flush_logs()
        self._corked = False  # the CONNECTION_CLOSE leaves with the caller's transmit
        self._ended.set()
        self._early.clear()  # held data never reaches the application of a failed connection
        self._unwritten.clear()
        for ended in (self._handshake, self._gate):
            if not ended.done():
                ended.set_result(False)
        for waiter in self._reattest_waiters.values():
            if not waiter.done():
                waiter.set_exception(fresh_copy(error))
                waiter.exception()  # mark retrieved: a cancelled reattest() leaves it unread
        self._reattest_waiters.clear()
        for stream in list(self._streams.values()):  # each removes itself
            stream._connection_closed(error)
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
            self._session_timer = self._event_loop.call_at(when, self._on_session_timer)

    def _on_session_timer(self) -> None:
        self._session_timer = None
        try:
            self._session.handle_timer(self._event_loop.time())
        except Exception as exc:  # never into the event loop's exception handler
            self._internal_failure(exc)
        self._pump()

    def _arm_reattest_timer(self) -> None:
        interval = self._config.reattest_interval
        if interval is None or self._session.closed:
            return
        if self._reattest_timer is not None:
            self._reattest_timer.cancel()
        self._reattest_timer = self._event_loop.call_later(interval, self._on_reattest_timer)

    def _on_reattest_timer(self) -> None:
        self._reattest_timer = None
        if self._session.closed:
            return
        self._log.info("reattestation.periodic")
        try:
            self._session.request_attestation(self._event_loop.time())
        except Exception as exc:
            self._internal_failure(exc)
        self._pump()
