"""What a newcomer's first mistakes look like: connect() and serve() fail with one clear line.

Over real UDP loopback: nothing listening, an ALPN mismatch, a server certificate the client
cannot verify, a port already in use; and the log lines a connection writes (peer address,
a rejection of our evidence with the peer's close code).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import pytest
from channel_helpers import (
    EchoApp,
    attestation,
    client_tls,
    connect_local,
    default_attester,
    echo_once,
    running_server,
    server_tls,
    simulated_verifier,
)

import attquic
from attquic.demo_ca import DemoCA
from attquic.errors import (
    AlpnRejected,
    CertificateVerificationFailed,
    ConfigurationError,
    HandshakeFailed,
    HandshakeTimeout,
    ListenError,
)
from attquic.tdx.simulated import OTHER_MRTD

pytestmark = [pytest.mark.anyio, pytest.mark.network]


def _free_udp_port() -> int:
    """A loopback UDP port with nothing bound to it (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _client() -> attquic.AttestationConfiguration:
    return attestation(verifier=simulated_verifier())


async def test_nothing_listening_is_a_handshake_timeout_naming_the_address() -> None:
    port = _free_udp_port()
    started = time.monotonic()
    with pytest.raises(HandshakeTimeout) as caught:
        async with connect_local(port, _client(), handshake_timeout=0.5):
            pytest.fail("connected to nothing")
    message = str(caught.value)
    assert message == (
        f"no answer from 127.0.0.1:{port} within 0.5 s "
        "(is an attquic server listening there, on UDP?)"
    )
    assert "\n" not in message
    assert caught.value.address == f"127.0.0.1:{port}"
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, ConnectionError)
    # generous bound (not a timing assertion on the timeout itself): it did not wait the
    # 60 s QUIC idle timeout
    assert time.monotonic() - started < 30


async def test_alpn_mismatch_says_so() -> None:
    tls = client_tls()
    tls.alpn_protocols = ["not-attquic"]
    async with running_server(attestation(attester=default_attester()), EchoApp()) as server:
        with pytest.raises(AlpnRejected) as caught:
            async with attquic.connect(
                "127.0.0.1", server.port, configuration=tls, attestation=_client()
            ):
                pytest.fail("connected without a common ALPN")
    assert str(caught.value) == (
        f"127.0.0.1:{server.port} accepted none of our ALPN protocols (offered: not-attquic)"
    )


async def test_certificate_verification_failure_gives_the_reason() -> None:
    tls = client_tls()
    tls.cadata = DemoCA.generate().certificate_pem  # trusts a CA that did not issue the server's
    async with running_server(attestation(attester=default_attester()), EchoApp()) as server:
        with pytest.raises(CertificateVerificationFailed) as caught:
            async with attquic.connect(
                "127.0.0.1", server.port, configuration=tls, attestation=_client()
            ):
                pytest.fail("connected with an unverifiable certificate")
    message = str(caught.value)
    assert message.startswith(f"TLS certificate verification failed with 127.0.0.1:{server.port}: ")
    assert caught.value.reason and caught.value.reason in message
    assert "\n" not in message


async def test_unresolvable_host_is_one_line() -> None:
    with pytest.raises(HandshakeFailed, match=r"^cannot connect to no-such-host\.invalid:4433: "):
        async with attquic.connect(
            "no-such-host.invalid", 4433, configuration=client_tls(), attestation=_client()
        ):
            pytest.fail("resolved an .invalid name")


async def test_handshake_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="handshake_timeout"):
        async with attquic.connect(
            "127.0.0.1", 1, configuration=client_tls(), attestation=_client(), handshake_timeout=0
        ):
            pass


async def test_a_port_in_use_is_one_line_naming_the_address() -> None:
    async with running_server(attestation(attester=default_attester()), EchoApp()) as server:
        with pytest.raises(ListenError) as caught:
            await attquic.serve(
                "127.0.0.1",
                server.port,
                configuration=server_tls(),
                attestation=attestation(attester=default_attester()),
                handler=EchoApp(),
            )
    message = str(caught.value)
    assert message == f"cannot listen on 127.0.0.1:{server.port} (UDP): address already in use"
    assert isinstance(caught.value, OSError)


async def test_connection_log_lines_carry_the_peer_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = EchoApp()
    with caplog.at_level(logging.INFO, logger="attquic"):
        async with running_server(attestation(attester=default_attester()), app) as server:
            async with connect_local(server.port, _client()) as connection:
                assert await echo_once(connection, b"ping") == b"ping"
                client_port = app.connections[0].peer_address
                assert connection.peer_address == f"127.0.0.1:{server.port}"
    lines = [r.__dict__["attquic"] for r in caplog.records if "attquic" in r.__dict__]
    per_connection = [e for e in lines if "conn" in e]
    assert {e["event"] for e in per_connection} >= {"gate.opened", "attestation.accepted"}
    for entry in per_connection:
        expected = f"127.0.0.1:{server.port}" if entry["role"] == "client" else client_port
        assert entry.get("peer") == expected, entry


async def test_the_attester_logs_the_peers_rejection_with_its_close_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server's evidence fails the client's policy: the server says so in its log."""
    with caplog.at_level(logging.INFO, logger="attquic"):
        async with running_server(
            attestation(attester=default_attester(mrtd=OTHER_MRTD)), EchoApp()
        ) as server:
            with pytest.raises(attquic.ConnectionClosed) as caught:
                async with connect_local(server.port, _client()):
                    pytest.fail("a rejected server reached the application")
            assert caught.value.code == attquic.CloseCode.POLICY_REJECTED
            for _ in range(100):  # the CONNECTION_CLOSE is on its way to the server
                if any("rejected_by_peer" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.02)
    rejected = [
        r for r in caplog.records if r.getMessage().startswith("attestation.rejected_by_peer")
    ]
    assert len(rejected) == 1 and rejected[0].levelno == logging.WARNING
    entry = rejected[0].__dict__["attquic"]
    assert entry["role"] == "server" and entry["code"] == "POLICY_REJECTED"
    assert "MRTD" in entry["reason"]
    assert entry["peer"].startswith("127.0.0.1:")


class _JunkAnswerer(asyncio.DatagramProtocol):
    """Answers every datagram with bytes that are not QUIC: the path works, no handshake."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(b"\x00" * 8, addr)


async def test_an_answer_without_a_handshake_is_told_apart_from_no_answer() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_JunkAnswerer, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        with pytest.raises(HandshakeTimeout, match=r"did not complete within 0\.5 s"):
            async with connect_local(port, _client(), handshake_timeout=0.5):
                pytest.fail("a handshake with a junk answerer")
    finally:
        transport.close()
