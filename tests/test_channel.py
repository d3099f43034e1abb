"""The attested channel end to end: real QUIC over UDP loopback, separate client and server
objects, simulated TDX evidence verified with full DCAP (dcap-qvl) and the appraisal policy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from channel_helpers import (
    EchoApp,
    RecordingAttester,
    StallingAttester,
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
from attquic import CloseCode
from attquic.ea.authenticator import ExportedAuthenticators
from attquic.protocol import AttestedQuicProtocol
from attquic.tdx.simulated import OTHER_MRTD, SimulatedTdxWarning, SimulationKnobs
from attquic.tdx.verifier import TdxAttestation

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore", category=SimulatedTdxWarning),
]

ROLES = {
    "server-attests": (True, False, False, True),
    "client-attests": (False, True, True, False),
    "mutual": (True, True, True, True),
}


@pytest.mark.parametrize("suite", ["sha256", "sha384"])
@pytest.mark.parametrize("role", list(ROLES))
async def test_roles_attest_and_data_flows(role: str, suite: str) -> None:
    server_attests, server_verifies, client_attests, client_verifies = ROLES[role]
    app = EchoApp()
    server_config = attestation(
        attester=default_attester() if server_attests else None,
        verifier=simulated_verifier() if server_verifies else None,
    )
    client_config = attestation(
        attester=default_attester(version=5) if client_attests else None,
        verifier=simulated_verifier() if client_verifies else None,
    )
    async with (
        running_server(server_config, app, suite) as server,
        connect_local(server.port, client_config, suite) as connection,
    ):
        assert connection.tls_hash_name == suite
        if client_verifies:
            result = connection.peer_attestation
            assert isinstance(result, TdxAttestation)
            assert result.tcb_status == "UpToDate"
        else:
            assert connection.peer_attestation is None
        assert await echo_once(connection, b"ping" * 1000) == b"ping" * 1000
    assert app.received == [b"ping" * 1000]
    if server_verifies:
        assert isinstance(app.connections[0].peer_attestation, TdxAttestation)


async def test_exporter_is_exposed_and_agrees() -> None:
    seen: list[bytes] = []

    async def handler(connection: attquic.AttestedConnection) -> None:
        seen.append(connection.export_keying_material(b"EXPORTER-test", b"ctx", 32))

    async with running_server(attestation(attester=default_attester()), handler) as server:
        async with connect_verifying(server) as connection:
            mine = connection.export_keying_material(b"EXPORTER-test", b"ctx", 32)
            await asyncio.sleep(0.05)
    assert seen == [mine]


async def _expect_rejection(
    server_config: attquic.AttestationConfiguration,
    client_config: attquic.AttestationConfiguration,
    code: CloseCode,
) -> EchoApp:
    app = EchoApp()
    async with running_server(server_config, app) as server:
        closed = await rejected(server.port, client_config)
        await asyncio.sleep(0.05)
    assert closed.code == code, closed
    assert app.connections == [] and app.received == []
    return app


async def test_mrtd_not_in_policy_is_rejected() -> None:
    await _expect_rejection(
        attestation(attester=default_attester(mrtd=OTHER_MRTD)),
        attestation(verifier=simulated_verifier()),
        CloseCode.POLICY_REJECTED,
    )


async def test_debug_td_is_rejected() -> None:
    knobs = SimulationKnobs(debug=True)
    await _expect_rejection(
        attestation(attester=default_attester(knobs=knobs)),
        attestation(verifier=simulated_verifier(knobs)),
        CloseCode.POLICY_REJECTED,
    )


async def test_expired_collateral_is_rejected() -> None:
    await _expect_rejection(
        attestation(attester=default_attester()),
        attestation(verifier=simulated_verifier(SimulationKnobs(expired=True))),
        CloseCode.EVIDENCE_INVALID,
    )


async def test_replayed_evidence_from_another_connection_is_rejected() -> None:
    """The CMW captured on connection A, presented in a fresh authenticator on B."""
    attacker = RecordingAttester(default_attester(), replay_first=True)
    app = EchoApp()
    async with running_server(attestation(attester=attacker), app) as server:
        client_config = attestation(verifier=simulated_verifier())
        async with connect_local(server.port, client_config):
            pass  # connection A: genuine
        closed = await rejected(server.port, client_config)
        await asyncio.sleep(0.05)
    assert closed.code == CloseCode.BINDING_MISMATCH
    assert len(app.connections) == 1


async def test_stalled_attester_times_out() -> None:
    await _expect_rejection(
        attestation(attester=StallingAttester()),
        attestation(verifier=simulated_verifier(), attestation_timeout=0.5),
        CloseCode.TIMEOUT,
    )


class _FailingAttester:
    async def attest(self, binding: object) -> object:
        raise attquic.LocalError("no TEE here")


async def test_attester_failure_sends_a_refusal() -> None:
    await _expect_rejection(
        attestation(attester=_FailingAttester()),  # type: ignore[arg-type]
        attestation(verifier=simulated_verifier()),
        CloseCode.REFUSED,
    )


async def test_reattestation_succeeds_and_failure_closes() -> None:
    attester = default_attester()
    app = EchoApp()
    async with (
        running_server(attestation(attester=attester), app) as server,
        connect_verifying(server) as connection,
    ):
        first = connection.peer_attestation
        second = await connection.reattest()
        assert isinstance(second, TdxAttestation)
        assert second is not first
        assert second.report_data != first.report_data  # type: ignore[union-attr]
        assert await echo_once(connection, b"after re-attestation") == b"after re-attestation"
        # the TD now reports other measurements: the next re-attestation must fail
        attester._measurements = type(attester.measurements)(mrtd=OTHER_MRTD)
        with pytest.raises(attquic.ConnectionClosed) as info:
            await connection.reattest()
        assert info.value.code == CloseCode.POLICY_REJECTED


async def test_periodic_reattestation() -> None:
    async with running_server(attestation(attester=default_attester()), EchoApp()) as server:
        async with connect_verifying(server, reattest_interval=0.2) as connection:
            first = connection.peer_attestation
            for _ in range(50):
                await asyncio.sleep(0.05)
                if connection.peer_attestation is not first:
                    break
            assert connection.peer_attestation is not first


def test_configuration_is_validated() -> None:
    with pytest.raises(attquic.AttquicError):
        attquic.AttestationConfiguration()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(attquic.AttquicError):
            attquic.AttestationConfiguration(attester=default_attester(), reattest_interval=5)


async def test_streams_opened_before_sending_get_distinct_ids() -> None:
    app = EchoApp()
    async with running_server(attestation(attester=default_attester()), app) as server:
        async with connect_verifying(server) as connection:
            first = await connection.open_stream()
            second = await connection.open_stream()
            assert first.stream_id != second.stream_id
            for stream, payload in ((second, b"second"), (first, b"first")):
                await stream.send(payload)
                await stream.send_eof()
            assert await first.receive_all() == b"first"
            assert await second.receive_all() == b"second"
    assert sorted(app.received) == [b"first", b"second"]


async def test_server_opens_a_stream_to_the_client() -> None:
    async def push(connection: attquic.AttestedConnection) -> None:
        stream = await connection.open_stream()
        await stream.send(b"pushed by the attested server")
        await stream.send_eof()
        await asyncio.sleep(0.2)

    async with running_server(attestation(attester=default_attester()), push) as server:
        async with connect_verifying(server) as connection:
            stream = await connection.accept_stream()
            assert stream.stream_id % 4 == 1  # server-initiated bidirectional
            assert await stream.receive_all() == b"pushed by the attested server"


async def _quiet(connection: attquic.AttestedConnection) -> None:
    """Let the attestation's last packets and acknowledgements settle."""
    await asyncio.sleep(0.05)


async def test_a_request_and_its_fin_leave_in_one_datagram() -> None:
    app = EchoApp()
    async with running_server(attestation(attester=default_attester()), app) as server:
        async with connect_verifying(server) as connection:
            await _quiet(connection)
            protocol = connection._protocol
            transport = protocol._transport
            assert transport is not None
            sent: list[bytes] = []
            undo = _record_sends(transport, sent)
            try:
                stream = await connection.open_stream()
                await stream.send(b"request")
                assert sent == []  # the first write waits for the next transmit...
                await stream.send_eof()
                assert len(sent) == 1  # ...so data and FIN share one packet
                assert await stream.receive_all() == b"request"
                # later writes on the stream are not deferred (the echo RTT must not pay)
                second = await connection.open_stream()
                await second.send(b"a")
                before = len(sent)
                await second.send(b"b")
                assert len(sent) == before + 1
                await second.send_eof()
                assert await second.receive_all() == b"ab"
            finally:
                undo()
    assert app.received == [b"request", b"ab"]


async def test_a_lone_first_write_still_leaves() -> None:
    """The deferred first write goes out by itself when nothing follows it in the same step."""
    chunks: list[bytes] = []

    async def reply_per_chunk(connection: attquic.AttestedConnection) -> None:
        stream = await connection.accept_stream()
        chunk = await stream.receive()
        chunks.append(chunk)
        await stream.send(chunk.upper())
        await asyncio.sleep(0.5)

    async with running_server(attestation(attester=default_attester()), reply_per_chunk) as server:
        async with connect_verifying(server) as connection:
            stream = await connection.open_stream()
            await stream.send(b"hello")  # no FIN, no further write: the loop must send it
            with anyio.fail_after(10):  # a hang guard, not a timing assertion
                assert await stream.receive() == b"HELLO"
    assert chunks == [b"hello"]


async def test_verification_in_a_worker_thread() -> None:
    """The verifier starts eagerly inside aioquic's event processing; a verifier that suspends
    there (a worker thread, through anyio) continues in its own task and opens the gate."""
    app = EchoApp()
    verifier = simulated_verifier()
    verifier.offload_to_thread = True
    async with running_server(attestation(attester=default_attester()), app) as server:
        async with connect_local(server.port, attestation(verifier=verifier)) as connection:
            assert isinstance(connection.peer_attestation, TdxAttestation)
            assert await echo_once(connection, b"threaded") == b"threaded"


def _record_sends(transport: asyncio.DatagramTransport, sent: list[bytes]) -> Callable[[], None]:
    """Append every datagram ``transport`` sends to ``sent``; returns the undo."""
    original = transport.sendto

    def recording(data: bytes, addr: object = None) -> None:
        sent.append(data)
        original(data, addr)

    transport.sendto = recording  # type: ignore[method-assign]
    return lambda: setattr(transport, "sendto", original)


def _count_client_datagrams_from_the_gate(
    monkeypatch: pytest.MonkeyPatch, sent: list[bytes]
) -> None:
    """Record every datagram the client sends from the moment its gate opens."""
    open_gate = AttestedQuicProtocol._open_gate

    def counting_open_gate(self: AttestedQuicProtocol) -> None:
        if self._is_client and self._transport is not None:
            _record_sends(self._transport, sent)
        open_gate(self)

    monkeypatch.setattr(AttestedQuicProtocol, "_open_gate", counting_open_gate)


async def test_the_result_and_the_first_request_share_one_datagram(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client's gate opens on its own verification, with the RESULT still to send: the
    transmit is held until the application's first request, so RESULT, acknowledgements,
    request and FIN leave in one datagram and the server reads them from one packet."""
    sent: list[bytes] = []
    _count_client_datagrams_from_the_gate(monkeypatch, sent)
    app = EchoApp()
    async with running_server(attestation(attester=default_attester()), app) as server:
        async with connect_verifying(server) as connection:
            assert sent == []  # the RESULT is held: the application runs first
            stream = await connection.open_stream()
            await stream.send(b"request")
            await stream.send_eof()
            assert len(sent) == 1
            assert await stream.receive_all() == b"request"
    assert app.received == [b"request"]


async def test_the_result_leaves_when_the_client_never_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hold lasts the two loop iterations the gate's waiters take, not until a write: a
    client that only listens still sends its RESULT, and the server's gate opens."""
    sent: list[bytes] = []
    _count_client_datagrams_from_the_gate(monkeypatch, sent)
    served = asyncio.Event()

    async def greet(connection: attquic.AttestedConnection) -> None:
        served.set()
        stream = await connection.open_stream()
        await stream.send(b"hello")
        await stream.send_eof()
        await asyncio.sleep(0.5)

    async with running_server(attestation(attester=default_attester()), greet) as server:
        async with connect_verifying(server) as connection:
            assert sent == []
            await asyncio.sleep(0)  # the loop iteration after the gate's waiters ran
            assert len(sent) == 1  # the RESULT (and acknowledgements) left on their own
            with anyio.fail_after(10):  # a hang guard, not a timing assertion
                await served.wait()
                stream = await connection.accept_stream()
                assert await stream.receive_all() == b"hello"


async def test_a_stream_already_queued_is_accepted_without_suspending() -> None:
    """The request usually arrives with the packet that opens the server's gate, before the
    handler runs: accept_stream() hands it over at once (no waiter tasks, no loop iterations)."""
    outcome: list[object] = []

    async def handler(connection: attquic.AttestedConnection) -> None:
        queue = connection._protocol._accept_queue
        with anyio.fail_after(10):  # a hang guard, not a timing assertion
            while queue.empty():
                await asyncio.sleep(0.001)
        accepting = connection.accept_stream()
        try:
            accepting.send(None)
        except StopIteration as finished:
            stream = finished.value
            outcome.append(stream)
            await stream.send(await stream.receive_all())
            await stream.send_eof()
        else:
            accepting.close()
            outcome.append("suspended")

    async with running_server(attestation(attester=default_attester()), handler) as server:
        async with connect_verifying(server) as connection:
            assert await echo_once(connection, b"queued") == b"queued"
    assert len(outcome) == 1 and isinstance(outcome[0], attquic.AttestedStream)


async def test_an_answer_and_its_fin_leave_in_one_datagram() -> None:
    """The first write on the peer's stream is deferred like a request's: the answer and its
    FIN share a packet, so the client reads one datagram before its first byte, not two."""
    counts: list[int] = []

    async def answer(connection: attquic.AttestedConnection) -> None:
        stream = await connection.accept_stream()
        request = await stream.receive_all()
        await _quiet(connection)
        transport = connection._protocol._transport
        assert transport is not None
        sent: list[bytes] = []
        undo = _record_sends(transport, sent)
        try:
            await stream.send(request.upper())
            assert sent == []  # the first write waits for the next transmit...
            await stream.send_eof()
            counts.append(len(sent))  # ...so the answer and its FIN share one packet
        finally:
            undo()
        await asyncio.sleep(0.2)

    async with running_server(attestation(attester=default_attester()), answer) as server:
        async with connect_verifying(server) as connection:
            assert await echo_once(connection, b"question") == b"QUESTION"
    assert counts == [1]


async def test_the_server_sends_what_is_pending_before_it_makes_evidence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HANDSHAKE_DONE (with the ACK of the client's Finished and the new connection IDs) leaves
    before the attester runs, even one that answers without suspending: the client handles that
    packet while the evidence is made, not in front of the answer's first packet."""
    pending_at_attest: list[bool] = []
    produce = AttestedQuicProtocol._produce_evidence

    async def recording(self: AttestedQuicProtocol, event: Any) -> None:
        pending_at_attest.append(self._quic._handshake_done_pending)
        await produce(self, event)

    monkeypatch.setattr(AttestedQuicProtocol, "_produce_evidence", recording)
    async with running_server(attestation(attester=default_attester()), EchoApp()) as server:
        async with connect_verifying(server) as connection:
            assert await echo_once(connection, b"ping") == b"ping"
    assert pending_at_attest == [False]


async def test_authenticator_keys_are_derived_while_waiting_for_the_peer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server derives its authenticator keys after its first flight, the client the keys to
    validate the server's authenticator after its Finished and request: neither is derived on
    the path from the request to the gate."""
    ready: list[tuple[str, bool]] = []
    authenticate, validate = ExportedAuthenticators.authenticate, ExportedAuthenticators.validate

    def authenticating(self: ExportedAuthenticators, *args: Any, **kwargs: Any) -> Any:
        ready.append(("server authenticates", self._own_keys is not None))
        return authenticate(self, *args, **kwargs)

    def validating(self: ExportedAuthenticators, data: bytes) -> Any:
        ready.append(("client validates", self._peer_keys is not None))
        return validate(self, data)

    monkeypatch.setattr(ExportedAuthenticators, "authenticate", authenticating)
    monkeypatch.setattr(ExportedAuthenticators, "validate", validating)
    async with running_server(attestation(attester=default_attester()), EchoApp()) as server:
        async with connect_verifying(server) as connection:
            assert await echo_once(connection, b"ping") == b"ping"
    assert ready == [("server authenticates", True), ("client validates", True)]


class _ClientRecords(logging.Handler):
    """attquic's INFO records of the client: each event with the number of datagrams the
    client had sent since its gate opened when the record was made."""

    def __init__(self, sent: list[bytes]) -> None:
        super().__init__(logging.INFO)
        self.sent = sent
        self.events: list[tuple[str, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "attquic", {})
        if event.get("role") == "client":
            self.events.append((event["event"], len(self.sent)))


@contextlib.contextmanager
def _client_records(monkeypatch: pytest.MonkeyPatch) -> Iterator[_ClientRecords]:
    sent: list[bytes] = []
    _count_client_datagrams_from_the_gate(monkeypatch, sent)
    records = _ClientRecords(sent)
    logger = logging.getLogger("attquic")
    level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)


async def test_the_gate_events_are_logged_after_the_packet_that_opens_the_peer_gate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """attestation.accepted and gate.opened wait for the transmit the gate holds (RESULT and
    first request): logging them first cost that packet 60-170 us. Same records, same order."""
    async with running_server(attestation(attester=default_attester()), EchoApp()) as server:
        with _client_records(monkeypatch) as records:
            async with connect_verifying(server) as connection:
                assert [e for e, _ in records.events if e == "gate.opened"] == []  # held
                assert await echo_once(connection, b"ping") == b"ping"
    gate = [(e, n) for e, n in records.events if e in ("attestation.accepted", "gate.opened")]
    assert gate == [("attestation.accepted", 1), ("gate.opened", 1)]  # after that one datagram


async def test_held_gate_events_are_logged_before_the_connection_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that closes at once: the held records come out, before its end."""
    async with running_server(attestation(attester=default_attester()), EchoApp()) as server:
        with _client_records(monkeypatch) as records:
            async with connect_verifying(server) as connection:
                connection.close()
            with anyio.fail_after(10):  # a hang guard, not a timing assertion
                await connection.wait_closed()
    events = [e for e, _ in records.events]
    assert events.count("attestation.accepted") == events.count("gate.opened") == 1
    assert events.index("attestation.accepted") < events.index("gate.opened")
