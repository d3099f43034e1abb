"""The gate over real UDP: early application data is held, released intact, or refused."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import pytest
from aioquic.asyncio.client import connect as quic_connect
from aioquic.quic import events as quic_events
from channel_helpers import (
    EchoApp,
    attestation,
    client_tls,
    default_attester,
    running_server,
    simulated_verifier,
)

from attquic import CloseCode
from attquic.config import AttestationConfiguration
from attquic.protocol import AttestedQuicProtocol
from attquic.streams import AttestedStream

pytestmark = [pytest.mark.anyio, pytest.mark.network]

EARLY_STREAM = 4  # the client's first application stream (0 is the control stream)


class EarlyDataClient(AttestedQuicProtocol):
    """An attquic client that pushes application bytes before the server's gate opens."""

    def __init__(self, *args: Any, early: bytes, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.early = early
        self.stream_events: list[quic_events.QuicEvent] = []
        self.early_stream: AttestedStream | None = None

    def quic_event_received(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.StopSendingReceived | quic_events.StreamReset):
            self.stream_events.append(event)
        super().quic_event_received(event)
        if isinstance(event, quic_events.HandshakeCompleted):
            # bypasses the client's own gate on purpose: this peer is impatient
            self._quic.send_stream_data(EARLY_STREAM, self.early, end_stream=True)
            self.early_stream = self._streams[EARLY_STREAM] = AttestedStream(self, EARLY_STREAM)
            self.early_stream._send_done = True  # the FIN above


async def _run_early_client(
    server_config: AttestationConfiguration, early: bytes
) -> tuple[EchoApp, EarlyDataClient, bytes | None]:
    app = EchoApp()
    async with running_server(server_config, app) as server:
        create = functools.partial(
            EarlyDataClient, early=early, attestation=attestation(verifier=simulated_verifier())
        )
        async with quic_connect(
            "127.0.0.1", server.port, configuration=client_tls(), create_protocol=create
        ) as client:
            protocol: EarlyDataClient = client  # type: ignore[assignment]
            await protocol.wait_attested()
            echoed: bytes | None = None
            stream = protocol.early_stream
            for _ in range(100):
                if (stream is not None and stream._eof) or protocol.stream_events:
                    break
                await asyncio.sleep(0.02)
            if stream is not None and stream._eof:
                echoed = bytes(stream._buffer)
    return app, protocol, echoed


async def test_early_data_within_the_bound_is_released_intact_after_the_gate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    early = bytes(range(256)) * 256  # 64 KiB, under the default 256 KiB bound
    with caplog.at_level(logging.INFO, logger="attquic"):
        app, client, echoed = await _run_early_client(
            attestation(attester=default_attester()), early
        )
    logs = [getattr(record, "attquic", {}) for record in caplog.records]
    server_gate = [e for e in logs if e.get("event") == "gate.opened" and e["role"] == "server"]
    assert server_gate and server_gate[0]["held_bytes"] > 0  # it really was held
    assert app.received == [early]
    assert echoed == early
    assert client.stream_events == []


async def test_early_data_beyond_the_bound_is_refused() -> None:
    early = b"x" * 64 * 1024
    app, client, echoed = await _run_early_client(
        attestation(attester=default_attester(), early_data_limit=4096), early
    )
    assert app.received == []  # the application never saw a byte of the refused stream
    assert echoed is None
    codes = {getattr(event, "error_code", None) for event in client.stream_events}
    assert codes == {CloseCode.BUFFER_OVERFLOW}


async def test_server_wide_early_data_budget_refuses_streams() -> None:
    """Within the connection's own bound but past the server-wide budget: refused."""
    early = b"z" * 16 * 1024
    app, client, echoed = await _run_early_client(
        attestation(
            attester=default_attester(), early_data_limit=64 * 1024, early_data_budget=8192
        ),
        early,
    )
    assert app.received == [] and echoed is None
    codes = {getattr(event, "error_code", None) for event in client.stream_events}
    assert codes == {CloseCode.BUFFER_OVERFLOW}
