"""The exporter hook on real aioquic connections over UDP loopback.

Both endpoints capture the exporter master secret independently (the client at the server
Finished, the server while building its first flight); equal exporters prove both captured the
same, correct secret. The fail-closed tests simulate aioquic's key schedule drifting from where
the hook expects it and check that the handshake dies instead of yielding an exporter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from _exporter_certs import SelfSigned, self_signed
from aioquic import tls
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicStreamHandler
from aioquic.asyncio.server import serve
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode

from attquic import profile
from attquic.errors import ConfigurationError, ExporterUnavailable
from attquic.keyschedule import ExporterSecret
from attquic.quic import ExporterCapture, ExportingQuicConnectionProtocol, capture_exporter

pytestmark = [pytest.mark.anyio, pytest.mark.network, pytest.mark.timeout(30)]

SUITES = [
    pytest.param(tls.CipherSuite.AES_128_GCM_SHA256, "sha256", id="aes128gcm"),
    pytest.param(tls.CipherSuite.AES_256_GCM_SHA384, "sha384", id="aes256gcm"),
    pytest.param(tls.CipherSuite.CHACHA20_POLY1305_SHA256, "sha256", id="chacha20"),
]
HASH_LENGTH = {"sha256": 32, "sha384": 48}

#: aioquic closes with CRYPTO_ERROR + the TLS alert; internal_error is alert 80.
CRYPTO_INTERNAL_ERROR = QuicErrorCode.CRYPTO_ERROR + tls.AlertDescription.internal_error


class RecordingProtocol(ExportingQuicConnectionProtocol):
    """Keeps every QUIC event, so a test can see how the connection ended."""

    def __init__(self, quic: QuicConnection, stream_handler: QuicStreamHandler | None = None):
        super().__init__(quic, stream_handler=stream_handler)
        self.events: list[events.QuicEvent] = []

    def quic_event_received(self, event: events.QuicEvent) -> None:
        self.events.append(event)
        super().quic_event_received(event)

    def close_codes(self) -> list[int]:
        return [e.error_code for e in self.events if isinstance(e, events.ConnectionTerminated)]


class DriftingProtocol(RecordingProtocol):
    """Simulates an aioquic whose key schedule is not where the hook expects it.

    Just before the first 1-RTT key reaches the hook, an extra message is hashed into the
    transcript (as if a later aioquic installed the key after hashing more messages). The key
    being installed is the genuine one; only the schedule the hook inspects has moved on.
    """

    def __init__(self, quic: QuicConnection, stream_handler: QuicStreamHandler | None = None):
        super().__init__(quic, stream_handler=stream_handler)
        hooked = quic._update_traffic_key

        def drifted(
            direction: tls.Direction, epoch: tls.Epoch, suite: tls.CipherSuite, secret: bytes
        ) -> None:
            schedule = quic.tls.key_schedule
            if epoch == tls.Epoch.ONE_RTT and schedule is not None:
                schedule.update_hash(b"\x14\x00\x00\x00")
            hooked(direction, epoch, suite, secret)

        quic._update_traffic_key = drifted  # type: ignore[method-assign,assignment]


@pytest.fixture(scope="module")
def server_identity() -> SelfSigned:
    return self_signed("localhost")


def configurations(
    identity: SelfSigned, suite: tls.CipherSuite
) -> tuple[QuicConfiguration, QuicConfiguration]:
    server = QuicConfiguration(is_client=False, alpn_protocols=["attquic-test"])
    server.certificate = identity.certificate
    server.private_key = identity.key
    server.cipher_suites = [suite]
    client = QuicConfiguration(
        is_client=True,
        alpn_protocols=["attquic-test"],
        server_name="localhost",
        cadata=identity.pem,
    )
    client.cipher_suites = [suite]
    return server, client


@asynccontextmanager
async def running_server(
    configuration: QuicConfiguration, protocol: type[RecordingProtocol]
) -> AsyncIterator[tuple[int, list[RecordingProtocol]]]:
    created: list[RecordingProtocol] = []

    def create_protocol(*args: Any, **kwargs: Any) -> RecordingProtocol:
        instance = protocol(*args, **kwargs)
        created.append(instance)
        return instance

    server = await serve(
        "127.0.0.1", 0, configuration=configuration, create_protocol=create_protocol
    )
    try:
        transport = server._transport
        assert transport is not None
        yield transport.get_extra_info("sockname")[1], created
    finally:
        server.close()


EXPORT_CASES: list[tuple[bytes, bytes, Callable[[str], int]]] = [
    (profile.LABEL_SERVER_HANDSHAKE_CONTEXT, b"", lambda h: HASH_LENGTH[h]),
    (profile.LABEL_CLIENT_FINISHED_KEY, b"", lambda h: HASH_LENGTH[h]),
    (profile.BINDING_EXPORTER_LABEL, bytes(range(32)), lambda h: 32),
    (b"EXPORTER-attquic-test", b"some context", lambda h: 64),
    (b"EXPORTER-attquic-test", b"", lambda h: 1),
    (b"EXPORTER-attquic-test", b"", lambda h: 255),
]


@pytest.mark.parametrize(("suite", "hash_name"), SUITES)
async def test_both_sides_agree_on_exporters(
    server_identity: SelfSigned, suite: tls.CipherSuite, hash_name: str
) -> None:
    server_config, client_config = configurations(server_identity, suite)
    async with (
        running_server(server_config, RecordingProtocol) as (port, servers),
        connect(
            "127.0.0.1",
            port,
            configuration=client_config,
            create_protocol=RecordingProtocol,
        ) as client,
    ):
        assert isinstance(client, RecordingProtocol)
        await client.ping()  # the server has processed the client's Finished by now
        (server,) = servers

        for side in (client, server):
            assert side.exporter_capture.captured
            assert side.tls_hash_name == hash_name
            assert side.exporter_capture.cipher_suite == suite
            assert isinstance(side.exporter, ExporterSecret)
            assert len(side.exporter.secret) == HASH_LENGTH[hash_name]

        outputs = set()
        for label, context, length_for in EXPORT_CASES:
            length = length_for(hash_name)
            ours = client.export_keying_material(label, context, length)
            assert len(ours) == length
            assert ours == server.export_keying_material(label, context, length)
            outputs.add(ours)
        assert len(outputs) == len(EXPORT_CASES)  # label, context and length all matter
        # The length is inside the HKDF label: a shorter export is not a prefix of a longer one.
        short = client.export_keying_material(b"EXPORTER-attquic-test", b"", 32)
        long = client.export_keying_material(b"EXPORTER-attquic-test", b"", 64)
        assert long[:32] != short


async def test_each_connection_has_its_own_exporter(server_identity: SelfSigned) -> None:
    server_config, client_config = configurations(
        server_identity, tls.CipherSuite.AES_128_GCM_SHA256
    )
    label = profile.LABEL_SERVER_HANDSHAKE_CONTEXT
    async with running_server(server_config, RecordingProtocol) as (port, servers):
        exports = []
        for _ in range(2):
            async with connect(
                "127.0.0.1", port, configuration=client_config, create_protocol=RecordingProtocol
            ) as client:
                assert isinstance(client, RecordingProtocol)
                exports.append(client.export_keying_material(label, b"", 32))
        assert exports[0] != exports[1]
        assert [s.export_keying_material(label, b"", 32) for s in servers] == exports


@pytest.mark.parametrize("drifting_side", ["client", "server"])
async def test_schedule_drift_fails_the_handshake(
    server_identity: SelfSigned, drifting_side: str
) -> None:
    server_config, client_config = configurations(
        server_identity, tls.CipherSuite.AES_256_GCM_SHA384
    )
    server_protocol = DriftingProtocol if drifting_side == "server" else RecordingProtocol
    client_protocol = DriftingProtocol if drifting_side == "client" else RecordingProtocol
    clients: list[RecordingProtocol] = []

    def create_client(*args: Any, **kwargs: Any) -> RecordingProtocol:
        clients.append(client_protocol(*args, **kwargs))
        return clients[-1]

    async with running_server(server_config, server_protocol) as (port, servers):
        with pytest.raises(ConnectionError):
            async with connect(
                "127.0.0.1", port, configuration=client_config, create_protocol=create_client
            ):
                pytest.fail("the handshake must not complete")
        (client,) = clients
        (server,) = servers
        drifted, peer = (client, server) if drifting_side == "client" else (server, client)

        assert not drifted.exporter_capture.captured
        assert drifted.exporter_capture.failure is not None
        with pytest.raises(ExporterUnavailable, match="server application traffic secret"):
            drifted.export_keying_material(b"EXPORTER-attquic-test", b"", 32)
        with pytest.raises(ExporterUnavailable):
            _ = drifted.tls_hash_name
        if drifting_side == "server":
            # The client never reaches its 1-RTT keys, and is told why the handshake failed.
            assert not peer.exporter_capture.captured
            assert peer.close_codes() == [CRYPTO_INTERNAL_ERROR]
        else:
            # The server had its keys, but the client aborted before sending its Finished.
            assert not any(isinstance(e, events.HandshakeCompleted) for e in drifted.events)
            assert drifted.close_codes() == [CRYPTO_INTERNAL_ERROR]


async def test_exporter_unavailable_before_handshake(server_identity: SelfSigned) -> None:
    _, client_config = configurations(server_identity, tls.CipherSuite.AES_128_GCM_SHA256)
    protocol = ExportingQuicConnectionProtocol(QuicConnection(configuration=client_config))
    assert not protocol.exporter_capture.captured
    assert protocol.exporter_capture.failure is None
    for access in (
        lambda: protocol.exporter,
        lambda: protocol.tls_hash_name,
        lambda: protocol.exporter_capture.cipher_suite,
        lambda: protocol.export_keying_material(b"EXPORTER-x", b"", 32),
    ):
        with pytest.raises(ExporterUnavailable, match="not reached the 1-RTT keys"):
            access()


def test_capture_is_per_connection_and_idempotent(server_identity: SelfSigned) -> None:
    _, client_config = configurations(server_identity, tls.CipherSuite.AES_128_GCM_SHA256)
    original = vars(QuicConnection)["_update_traffic_key"]
    first = QuicConnection(configuration=client_config)
    second = QuicConnection(configuration=client_config)
    capture = capture_exporter(first)
    assert isinstance(capture, ExporterCapture)
    assert capture_exporter(first) is capture
    assert "_update_traffic_key" in vars(first)  # wrapped on this instance only
    assert "_update_traffic_key" not in vars(second)
    assert vars(QuicConnection)["_update_traffic_key"] is original  # no class-level patching


def test_capture_refuses_a_started_handshake(server_identity: SelfSigned) -> None:
    _, client_config = configurations(server_identity, tls.CipherSuite.AES_128_GCM_SHA256)
    quic = QuicConnection(configuration=client_config)
    quic.connect(("127.0.0.1", 4433), now=0.0)
    with pytest.raises(ConfigurationError):
        capture_exporter(quic)
