"""The public asyncio API: :func:`serve` and :func:`connect`, in the style of aioquic.asyncio.

Both hand the application an :class:`AttestedConnection` only once the channel is attested:
``connect`` returns after the gate opened, and the server calls its handler only for
connections whose gate opened. A connection that fails attestation never reaches the
application; ``connect`` raises :class:`~attquic.errors.ConnectionClosed` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, cast

from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration

from attquic.attestation import AttestationResult
from attquic.config import AttestationConfiguration
from attquic.early_data import EarlyDataBudget
from attquic.errors import CloseCode, ConfigurationError, ConnectionClosed
from attquic.logs import get_logger
from attquic.pkix import AuthenticatorIdentity
from attquic.protocol import AttestedQuicProtocol
from attquic.streams import AttestedReceiveStream, AttestedSendStream, AttestedStream

__all__ = ["AttestedConnection", "AttestedServer", "ConnectionHandler", "connect", "serve"]

_log = get_logger("attquic")


class AttestedConnection:
    """An attested QUIC connection, as the application sees it."""

    def __init__(self, protocol: AttestedQuicProtocol) -> None:
        self._protocol = protocol

    @property
    def peer_attestation(self) -> AttestationResult | None:
        """The peer's latest verified attestation; None when this side does not verify it."""
        return self._protocol.peer_attestation

    @property
    def peer_identity(self) -> AuthenticatorIdentity | None:
        """How the peer's authenticator certificate was trusted (draft-fossati-seat-expat -04
        §3.3): the certificate TLS verified, a chain to the trust store, or (opt-in) the
        evidence alone; None when this side does not verify the peer."""
        return self._protocol.peer_identity

    @property
    def tls_hash_name(self) -> str:
        """The negotiated TLS 1.3 suite hash ("sha256" or "sha384")."""
        return self._protocol.tls_hash_name

    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
        """RFC 8446 §7.5 TLS-Exporter on this connection (for your own channel bindings)."""
        return self._protocol.export_keying_material(label, context, length)

    async def open_stream(self) -> AttestedStream:
        """Open a new bidirectional application stream."""
        return await self._protocol.open_stream()

    async def open_send_stream(self) -> AttestedSendStream:
        """Open a new unidirectional application stream: we send, the peer receives."""
        return await self._protocol.open_send_stream()

    async def accept_stream(self) -> AttestedStream:
        """Wait for the peer's next bidirectional application stream."""
        return await self._protocol.accept_stream()

    async def accept_receive_stream(self) -> AttestedReceiveStream:
        """Wait for the peer's next unidirectional application stream (receive only).

        Up to 128 such streams wait here; the peer's further ones are refused
        (STOP_SENDING with BUFFER_OVERFLOW) until the application accepts some.
        """
        return await self._protocol.accept_receive_stream()

    async def reattest(self) -> AttestationResult:
        """Re-attest the peer now (new request context); failure closes the connection."""
        return await self._protocol.reattest()

    def close(self, code: int = CloseCode.NO_ERROR, reason: str = "") -> None:
        self._protocol.close_with(code, reason)

    async def wait_closed(self) -> None:
        await self._protocol.wait_closed()


ConnectionHandler = Callable[[AttestedConnection], Awaitable[None]]


def _attested_quic_configuration(configuration: QuicConfiguration) -> QuicConfiguration:
    """A copy of ``configuration`` fit for an attested endpoint: no resumption, no 0-RTT."""
    if configuration.session_ticket is not None:
        raise ConfigurationError(
            "attested endpoints do not resume sessions (draft-fossati-seat-expat -03): "
            "remove session_ticket"
        )
    return dataclasses.replace(configuration)


class AttestedServer:
    """A listening attested server; an async context manager that closes it on exit."""

    def __init__(
        self,
        server: QuicServer,
        transport: asyncio.BaseTransport,
        handler_tasks: set[asyncio.Task[None]],
        early_data_budget: EarlyDataBudget,
    ) -> None:
        self._server = server
        self._udp_transport = transport
        self._handler_tasks = handler_tasks
        self._early_data_budget = early_data_budget

    @property
    def port(self) -> int:
        """The bound UDP port (useful with ``port=0``)."""
        return cast(int, self._udp_transport.get_extra_info("sockname")[1])

    @property
    def early_data_held(self) -> int:
        """Bytes held before attestation across all connections now, stream charges included
        (at most ``AttestationConfiguration.early_data_budget``); 0 when none is unattested."""
        return self._early_data_budget.held

    def close(self) -> None:
        self._server.close()
        for task in list(self._handler_tasks):
            task.cancel()

    async def __aenter__(self) -> AttestedServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await asyncio.sleep(0)


async def serve(
    host: str,
    port: int,
    *,
    configuration: QuicConfiguration,
    attestation: AttestationConfiguration,
    handler: ConnectionHandler,
    retry: bool = False,
) -> AttestedServer:
    """Listen for attested QUIC connections on ``host``:``port``.

    ``handler(connection)`` runs once per connection, only after its gate opened; when it
    returns the connection is closed gracefully, and if it raises the connection is closed
    with INTERNAL_ERROR. ``configuration`` needs the server's TLS certificate and key.
    """
    if configuration.is_client:
        raise ConfigurationError("serve() needs a server QuicConfiguration (is_client=False)")
    quic_configuration = _attested_quic_configuration(configuration)
    attestation = attestation.for_endpoint(quic_configuration)
    tasks: set[asyncio.Task[None]] = set()

    async def run_handler(protocol: AttestedQuicProtocol) -> None:
        try:
            await handler(AttestedConnection(protocol))
        except ConnectionClosed:
            pass
        except Exception as exc:
            _log.exception("handler.failed", error=repr(exc))
            protocol.close_with(CloseCode.INTERNAL_ERROR, "application handler failed")
        else:
            protocol.close_with(CloseCode.NO_ERROR)

    def on_gate_open(protocol: AttestedQuicProtocol) -> None:
        task = asyncio.get_running_loop().create_task(run_handler(protocol))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    budget = EarlyDataBudget(attestation.early_data_budget)
    create_protocol = functools.partial(
        AttestedQuicProtocol,
        attestation=attestation,
        on_gate_open=on_gate_open,
        early_data_budget=budget,
    )
    # what aioquic.asyncio.serve does, keeping the transport (aioquic only holds it privately)
    transport, server = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: QuicServer(
            configuration=quic_configuration, create_protocol=create_protocol, retry=retry
        ),
        local_addr=(host, port),
    )
    return AttestedServer(server, transport, tasks, budget)


@contextlib.asynccontextmanager
async def connect(
    host: str,
    port: int,
    *,
    configuration: QuicConfiguration,
    attestation: AttestationConfiguration,
    local_port: int = 0,
) -> AsyncIterator[AttestedConnection]:
    """Connect to an attested server; yields only once the channel is attested.

    Raises :class:`~attquic.errors.ConnectionClosed` (with the close code) if attestation
    fails on either side, or ``ConnectionError`` if the QUIC handshake fails.
    """
    if not configuration.is_client:
        raise ConfigurationError("connect() needs a client QuicConfiguration (is_client=True)")
    quic_configuration = _attested_quic_configuration(configuration)
    attestation = attestation.for_endpoint(quic_configuration)
    create_protocol: Any = functools.partial(AttestedQuicProtocol, attestation=attestation)
    async with quic_connect(
        host,
        port,
        configuration=quic_configuration,
        create_protocol=create_protocol,
        local_port=local_port,
    ) as client:
        protocol = cast(AttestedQuicProtocol, client)
        await protocol.wait_attested()
        yield AttestedConnection(protocol)
