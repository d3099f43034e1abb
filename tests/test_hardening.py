"""Hostile peers against the adapter itself, over real QUIC/UDP on 127.0.0.1.

Control-stream resets and stops in either direction, before and after the gate; failures inside
the adapter; floods of streams before the gate; the early-data budget coming back however a
connection ends; the peer's re-attestation rate. Each case is in docs/security.md with its
mitigation and close code. The hostile side is plain aioquic (tests/attack_helpers.py).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from attack_helpers import (
    CONTROL,
    WAIT,
    HostilePeer,
    genuine_authenticator,
    hostile_client,
    hostile_server,
    setup_frame,
)
from channel_helpers import (
    TEST_CA,
    EchoApp,
    RecordingAttester,
    attestation,
    connect_local,
    connect_verifying,
    default_attester,
    echo_once,
    rejected,
    running_server,
    simulated_verifier,
)

import attquic
from attquic import CloseCode, expat, frames
from attquic.ea.authenticator import ExportedAuthenticators
from attquic.ea.messages import AuthenticatorRequest, Role
from attquic.early_data import STREAM_CHARGE
from attquic.events import SendControlData
from attquic.protocol import AttestedQuicProtocol
from attquic.session import AttestationSession
from attquic.tdx.simulated import SimulatedTdxWarning

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning"),
]

SHORT_TIMEOUT = 1.5
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SimulatedTdxWarning)
    GENUINE = default_attester()
#: A certificate the client's trust store accepts: these attacks are about the adapter, not
#: about an untrusted certificate.
HOSTILE_IDENTITY = TEST_CA.issue("hostile attester")
STOP_CODE = 0x77


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
async def loop_errors() -> list[dict[str, Any]]:
    """Everything that reaches the event loop's exception handler ("exception in callback",
    "task exception was never retrieved"); a test asserts it stays empty."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    return errors


def _recording(**kwargs: Any) -> tuple[RecordingAttester, attquic.AttestationConfiguration]:
    attester = RecordingAttester(GENUINE)
    options: dict[str, Any] = {"attestation_timeout": 5.0, **kwargs}
    return attester, attestation(attester=attester, **options)


def _client_request(peer: HostilePeer) -> AuthenticatorRequest:
    return ExportedAuthenticators(peer.exporter, Role.CLIENT).request([expat.offer()])


async def _open_as_requester(peer: HostilePeer, *, attests: bool = False) -> None:
    peer.send_control(setup_frame(requests=True, attests=attests))
    await peer.next_frame(frames.SetupFrame)


async def _attest_server(peer: HostilePeer) -> bytes:
    """Ask the server for its attestation and accept the answer unverified (RESULT); returns
    the request context. The server's gate opens on the RESULT."""
    request = _client_request(peer)
    peer.send_control(frames.AuthenticatorRequestFrame(request.encode()))
    await peer.next_frame(frames.AuthenticatorFrame)
    peer.send_control(frames.ResultFrame(request.context))
    return request.context


async def _eventually(predicate: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def _abort_control(peer: HostilePeer, how: str) -> None:
    """STOP_SENDING ("stop") or RESET_STREAM ("reset") on the control stream."""
    quic = peer._quic
    if CONTROL not in quic._streams:  # a client creates stream 0 by writing to it
        quic.send_stream_data(CONTROL, b"", end_stream=False)
    if how == "stop":
        quic.stop_stream(CONTROL, STOP_CODE)
    else:
        quic.reset_stream(CONTROL, STOP_CODE)
    peer.transmit()


async def _server_closed(peer: HostilePeer, app: EchoApp, code: CloseCode) -> None:
    assert await peer.close_code() == code
    assert app.received == []


# --- control stream: STOP_SENDING / RESET_STREAM -------------------------------------------------


@pytest.mark.parametrize("how", ["stop", "reset"])
async def test_client_aborts_control_stream_before_anything(
    how: str, loop_errors: list[dict[str, Any]]
) -> None:
    """The client stops/resets stream 0 first, then sends SETUP and a request: the server
    closes at once with PROTOCOL_VIOLATION and never produces a quote."""
    app = EchoApp()
    attester, config = _recording()
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        _abort_control(peer, how)
        if how == "stop":  # a reset stream can carry nothing more
            peer.send_control(setup_frame(requests=True, attests=False))
            peer.send_control(frames.AuthenticatorRequestFrame(_client_request(peer).encode()))
        await _server_closed(peer, app, CloseCode.PROTOCOL_VIOLATION)
        assert app.connections == []
        await _eventually(lambda: server.early_data_held == 0)
    assert attester.produced == []
    assert loop_errors == []


@pytest.mark.parametrize("how", ["stop", "reset"])
async def test_client_aborts_control_stream_against_a_mutual_server(
    how: str, loop_errors: list[dict[str, Any]]
) -> None:
    """Mutual server: its first control write used to raise and leave the connection open
    with its early data pinned. Now PROTOCOL_VIOLATION, and the held data is released."""
    app = EchoApp()
    config = attestation(
        attester=GENUINE, verifier=simulated_verifier(), attestation_timeout=SHORT_TIMEOUT
    )
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        peer.send_stream(CONTROL, b"")  # creates the control stream, sends nothing
        peer.send_stream(peer.next_stream_id(), b"early" * 100)
        await _eventually(lambda: server.early_data_held > 0)
        _abort_control(peer, how)
        if how == "stop":
            peer.send_control(setup_frame(requests=True, attests=True))
        await _server_closed(peer, app, CloseCode.PROTOCOL_VIOLATION)
        await _eventually(lambda: server.early_data_held == 0)
    assert loop_errors == []


@pytest.mark.parametrize("how", ["stop", "reset"])
async def test_client_aborts_control_stream_after_the_gate(
    how: str, loop_errors: list[dict[str, Any]]
) -> None:
    """After the server's gate opened: PROTOCOL_VIOLATION, and the handler's connection ends."""
    app = EchoApp()
    _, config = _recording()
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        await _open_as_requester(peer)
        await _attest_server(peer)
        await _eventually(lambda: len(app.connections) == 1)
        _abort_control(peer, how)
        assert await peer.close_code() == CloseCode.PROTOCOL_VIOLATION
        with pytest.raises(attquic.ConnectionClosed) as info:
            await asyncio.wait_for(app.connections[0].accept_stream(), WAIT)
        assert info.value.code == CloseCode.PROTOCOL_VIOLATION
    assert loop_errors == []


@pytest.mark.parametrize("how", ["stop", "reset"])
async def test_server_aborts_control_stream_before_its_authenticator(
    how: str, loop_errors: list[dict[str, Any]]
) -> None:
    """The server stops/resets stream 0, then sends a valid authenticator: the client closes
    at once with PROTOCOL_VIOLATION (its RESULT write used to raise in the verify task)."""

    async def server(peer: HostilePeer) -> None:
        await peer.next_frame(frames.SetupFrame)
        peer.send_control(setup_frame(requests=False, attests=True))
        request = await peer.next_request()
        _abort_control(peer, how)
        if how == "stop":
            answer = await genuine_authenticator(peer, request, GENUINE, HOSTILE_IDENTITY)
            peer.send_control(frames.AuthenticatorFrame(answer))

    async with hostile_server(server) as (port, peers):
        closed = await rejected(
            port, attestation(verifier=simulated_verifier(), attestation_timeout=5.0)
        )
        assert closed.code == CloseCode.PROTOCOL_VIOLATION and not closed.by_peer
        assert await peers[0].close_code() == CloseCode.PROTOCOL_VIOLATION
    assert loop_errors == []


@pytest.mark.parametrize("how", ["stop", "reset"])
async def test_server_aborts_control_stream_after_the_gate(
    how: str, loop_errors: list[dict[str, Any]]
) -> None:
    """After the client's gate opened on genuine evidence: PROTOCOL_VIOLATION."""
    aborted = asyncio.Event()

    async def server(peer: HostilePeer) -> None:
        await peer.next_frame(frames.SetupFrame)
        peer.send_control(setup_frame(requests=False, attests=True))
        request = await peer.next_request()
        answer = await genuine_authenticator(peer, request, GENUINE, HOSTILE_IDENTITY)
        peer.send_control(frames.AuthenticatorFrame(answer))
        await peer.next_frame(frames.ResultFrame)
        _abort_control(peer, how)
        aborted.set()

    async with hostile_server(server) as (port, peers):
        async with connect_local(
            port, attestation(verifier=simulated_verifier(), attestation_timeout=5.0)
        ) as connection:
            assert connection.peer_attestation is not None
            with pytest.raises(attquic.ConnectionClosed) as info:
                await asyncio.wait_for(connection.accept_stream(), WAIT)
        assert aborted.is_set()
        assert info.value.code == CloseCode.PROTOCOL_VIOLATION and not info.value.by_peer
        assert await peers[0].close_code() == CloseCode.PROTOCOL_VIOLATION
    assert loop_errors == []


@pytest.mark.parametrize("how", ["stop", "reset"])
async def test_mutual_client_against_a_server_aborting_control(
    how: str, loop_errors: list[dict[str, Any]]
) -> None:
    """Mutual client: the server asks for the client's evidence, then aborts stream 0 while
    the client's attester runs. PROTOCOL_VIOLATION, nothing escapes the attester task."""

    async def server(peer: HostilePeer) -> None:
        await peer.next_frame(frames.SetupFrame)
        peer.send_control(setup_frame(requests=True, attests=True))
        await peer.next_request()
        request = ExportedAuthenticators(peer.exporter, Role.SERVER).request([expat.offer()])
        peer.send_control(frames.AuthenticatorRequestFrame(request.encode()))
        _abort_control(peer, how)

    config = attestation(attester=GENUINE, verifier=simulated_verifier(), attestation_timeout=5.0)
    async with hostile_server(server) as (port, peers):
        closed = await rejected(port, config)
        assert closed.code == CloseCode.PROTOCOL_VIOLATION
        assert await peers[0].close_code() == CloseCode.PROTOCOL_VIOLATION
    assert loop_errors == []


async def test_unattested_peer_never_outlives_the_deadline(
    loop_errors: list[dict[str, Any]],
) -> None:
    """A client that keeps the connection busy (PINGs, stream resets and stops, streams)
    without ever attesting is closed at the attestation deadline."""
    app = EchoApp()
    _, config = _recording(attestation_timeout=SHORT_TIMEOUT)
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        await _open_as_requester(peer)

        async def busy() -> None:
            while True:
                stream_id = peer.next_stream_id()
                peer.send_stream(stream_id, b"x")
                peer._quic.reset_stream(stream_id, 1)
                peer._quic.stop_stream(stream_id, 2)
                peer._quic.send_ping(0)
                peer.transmit()
                await asyncio.sleep(0.02)

        task = asyncio.get_running_loop().create_task(busy())
        try:
            await _server_closed(peer, app, CloseCode.TIMEOUT)
        finally:
            task.cancel()
        await _eventually(lambda: server.early_data_held == 0)
    assert loop_errors == []


# --- failures inside the adapter -----------------------------------------------------------------


async def test_a_failing_control_write_closes_with_internal_error(
    monkeypatch: pytest.MonkeyPatch, loop_errors: list[dict[str, Any]]
) -> None:
    """Any exception while carrying out a session event closes the connection with
    INTERNAL_ERROR; the events queued behind it (the close) are still carried out."""
    original = AttestedQuicProtocol._carry_out

    def failing(self: AttestedQuicProtocol, event: object) -> None:
        if not self._is_client and isinstance(event, SendControlData):
            raise RuntimeError("injected: cannot write the control stream")
        original(self, event)

    monkeypatch.setattr(AttestedQuicProtocol, "_carry_out", failing)
    app = EchoApp()
    config = attestation(attester=GENUINE, verifier=simulated_verifier(), attestation_timeout=30)
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        peer.send_control(setup_frame(requests=True, attests=True))
        assert await peer.close_code() == CloseCode.INTERNAL_ERROR
        assert app.connections == []
    assert loop_errors == []


async def test_a_failing_event_handler_closes_with_internal_error(
    monkeypatch: pytest.MonkeyPatch, loop_errors: list[dict[str, Any]]
) -> None:
    """An exception inside quic_event_received (called from aioquic's datagram callback)
    closes with INTERNAL_ERROR instead of reaching the event loop."""

    def failing(self: AttestedQuicProtocol, *args: object) -> None:
        raise ValueError("injected: application data handler")

    monkeypatch.setattr(AttestedQuicProtocol, "_application_data", failing)
    app = EchoApp()
    _, config = _recording(attestation_timeout=30)
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        await _open_as_requester(peer)
        peer.send_stream(peer.next_stream_id(), b"early")
        assert await peer.close_code() == CloseCode.INTERNAL_ERROR
    assert loop_errors == []


async def test_a_crash_in_the_evidence_task_never_leaks(
    monkeypatch: pytest.MonkeyPatch, loop_errors: list[dict[str, Any]]
) -> None:
    """An unexpected exception in the evidence task after the attester returned closes the
    connection with INTERNAL_ERROR instead of leaking from the task."""

    def crash(self: AttestationSession, *args: object) -> None:
        raise TypeError("injected: evidence_ready")

    monkeypatch.setattr(AttestationSession, "evidence_ready", crash)
    app = EchoApp()
    _, config = _recording(attestation_timeout=30)
    async with running_server(config, app) as server:
        closed = await rejected(
            server.port, attestation(verifier=simulated_verifier(), attestation_timeout=30)
        )
        assert closed.code == CloseCode.INTERNAL_ERROR and closed.by_peer
    assert loop_errors == []


# --- streams before the gate count ---------------------------------------------------------------


async def test_flood_of_empty_streams_before_the_gate_is_bounded() -> None:
    """An unattested client opens thousands of empty unidirectional streams with FIN. Each
    held stream costs STREAM_CHARGE, so the server holds at most early_data_limit for it
    (256 streams by default), and an honest client is still served meanwhile."""
    app = EchoApp()
    limit = 64 * STREAM_CHARGE
    _, config = _recording(attestation_timeout=30, early_data_limit=limit)
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        await _open_as_requester(peer)
        peak = 0
        for _ in range(40):
            for _ in range(100):
                stream_id = peer.next_stream_id(unidirectional=True)
                peer._quic.send_stream_data(stream_id, b"", end_stream=True)
            peer.transmit()
            await asyncio.sleep(0.01)
            peak = max(peak, server.early_data_held)
        await peer.ping()
        peak = max(peak, server.early_data_held)
        opened = peer.next_stream_id(unidirectional=True) // 4
        assert opened >= 1000  # the flood really went through QUIC's stream limit
        assert peak == limit  # held: exactly 64 streams' charges, the rest refused
        async with connect_verifying(server) as connection:
            assert await echo_once(connection, b"still served") == b"still served"
        assert server.early_data_held == limit
    assert app.received == [b"still served"]


async def test_stream_flood_from_many_connections_stays_within_the_server_budget() -> None:
    """Three flooding connections against a server budget of 100 stream charges: together they
    hold at most the budget; the honest client's attestation is unaffected."""
    app = EchoApp()
    budget = 100 * STREAM_CHARGE
    _, config = _recording(
        attestation_timeout=30, early_data_limit=64 * STREAM_CHARGE, early_data_budget=budget
    )
    async with running_server(config, app) as server:
        async with (
            hostile_client(server.port) as a,
            hostile_client(server.port) as b,
            hostile_client(server.port) as c,
        ):
            for peer in (a, b, c):
                await _open_as_requester(peer)
            for _ in range(5):
                for peer in (a, b, c):
                    for _ in range(50):
                        stream_id = peer.next_stream_id(unidirectional=True)
                        peer._quic.send_stream_data(stream_id, b"", end_stream=True)
                    peer.transmit()
                await asyncio.sleep(0.01)
            for peer in (a, b, c):
                await peer.ping()
            assert server.early_data_held == budget
            async with connect_verifying(server) as connection:
                assert await echo_once(connection, b"honest") == b"honest"
        await _eventually(lambda: server.early_data_held == 0)


# --- the early-data budget comes back however a connection ends ----------------------------------


async def _end_by_peer_close(peer: HostilePeer) -> CloseCode | None:
    peer.close(error_code=0x42, reason_phrase="bye")
    return None


async def _end_by_violation(peer: HostilePeer) -> CloseCode | None:
    peer.send_control(setup_frame(requests=True, attests=False))  # a second SETUP
    return CloseCode.PROTOCOL_VIOLATION


async def _end_by_timeout(peer: HostilePeer) -> CloseCode | None:
    return CloseCode.TIMEOUT


async def _end_by_attestation(peer: HostilePeer) -> CloseCode | None:
    await _attest_server(peer)  # the gate opens: held data goes to the application
    return None


@pytest.mark.parametrize(
    "end", [_end_by_peer_close, _end_by_violation, _end_by_timeout, _end_by_attestation]
)
async def test_early_data_budget_returns_however_the_connection_ends(
    end: Callable[[HostilePeer], Awaitable[CloseCode | None]],
) -> None:
    """Held bytes go back to the server-wide budget when the connection ends (peer close,
    protocol violation, timeout) or its gate opens; then another client's early data fits."""
    app = EchoApp()
    budget = 2 * STREAM_CHARGE + 3000
    _, config = _recording(attestation_timeout=SHORT_TIMEOUT, early_data_budget=budget)
    async with running_server(config, app) as server:
        async with hostile_client(server.port) as first:
            await _open_as_requester(first)
            first.send_stream(first.next_stream_id(), b"a" * 2000, end_stream=True)
            await _eventually(lambda: server.early_data_held == STREAM_CHARGE + 2000)
            code = await end(first)
            await _eventually(lambda: server.early_data_held == 0)
            if code is not None:
                assert await first.close_code() == code
        async with hostile_client(server.port) as second:
            await _open_as_requester(second)
            stream_id = second.next_stream_id()
            second.send_stream(stream_id, b"b" * 2000, end_stream=True)
            await _attest_server(second)
            await _eventually(lambda: b"b" * 2000 in app.received)
            assert stream_id not in second.inbox.stop_sending


# --- the peer's re-attestation rate --------------------------------------------------------------


async def _reattest_until_closed(peer: HostilePeer, rounds: int) -> int:
    """Ask again and again (each answered and confirmed); the number of answers received."""
    answers = 0
    for _ in range(rounds):
        request = _client_request(peer)
        peer.send_control(frames.AuthenticatorRequestFrame(request.encode()))
        try:
            await peer.next_frame(frames.AuthenticatorFrame)
        except TimeoutError:
            break
        answers += 1
        peer.send_control(frames.ResultFrame(request.context))
        if peer.terminated.done():
            break
    return answers


async def test_reattestation_spam_is_closed_at_the_default_limit() -> None:
    """A peer asking for fresh quotes as fast as it can: the default limit (4 back to back
    after the initial request) lets 4 through, the next closes with REQUEST_RATE_EXCEEDED."""
    app = EchoApp()
    attester, config = _recording()
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        await _open_as_requester(peer)
        await _attest_server(peer)
        spam = asyncio.get_running_loop().create_task(_reattest_until_closed(peer, 50))
        assert await peer.close_code() == CloseCode.REQUEST_RATE_EXCEEDED
        spam.cancel()
    assert len(attester.produced) == 1 + 4


async def test_reattestation_limit_is_configurable_and_refills() -> None:
    """burst=1, one more per 0.3 s: a second request after the refill is served, two in a row
    are not."""
    app = EchoApp()
    attester, config = _recording(peer_reattest_burst=1, peer_reattest_interval=0.3)
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        await _open_as_requester(peer)
        await _attest_server(peer)
        assert await _reattest_until_closed(peer, 1) == 1  # the burst
        await asyncio.sleep(0.4)
        assert await _reattest_until_closed(peer, 1) == 1  # refilled
        request = _client_request(peer)
        peer.send_control(frames.AuthenticatorRequestFrame(request.encode()))
        assert await peer.close_code() == CloseCode.REQUEST_RATE_EXCEEDED
    assert len(attester.produced) == 3


async def test_honest_reattestation_within_the_limit() -> None:
    """The attquic client's own reattest() stays within the default limit."""
    app = EchoApp()
    _, config = _recording()
    async with running_server(config, app) as server:
        async with connect_verifying(server) as connection:
            for _ in range(4):
                await connection.reattest()
            assert await echo_once(connection, b"ok") == b"ok"
