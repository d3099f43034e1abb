"""The public asyncio API: :func:`serve` and :func:`connect`, in the style of aioquic.asyncio.

Both hand the application an :class:`AttestedConnection` only once the channel is attested:
``connect`` returns after the gate opened, and the server calls its handler only for
connections whose gate opened. A connection that fails attestation never reaches the
application; ``connect`` raises :class:`~attquic.errors.ConnectionClosed` instead, and
:class:`~attquic.errors.HandshakeFailed` (one of its subclasses saying why) when there was no
QUIC connection to attest. ``serve`` raises :class:`~attquic.errors.ListenError` when it cannot
listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Final, cast

from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.packet import QuicErrorCode
from aioquic.tls import AlertDescription

from attquic.attestation import AttestationResult
from attquic.config import AttestationConfiguration
from attquic.early_data import EarlyDataBudget
from attquic.errors import (
    AlpnRejected,
    CertificateVerificationFailed,
    CloseCode,
    ConfigurationError,
    ConnectionClosed,
    HandshakeFailed,
    HandshakeTimeout,
    ListenError,
)
from attquic.logs import get_logger
from attquic.pkix import AuthenticatorIdentity
from attquic.protocol import AttestedQuicProtocol
from attquic.streams import AttestedReceiveStream, AttestedSendStream, AttestedStream

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "AttestedConnection",
    "AttestedServer",
    "ConnectionHandler",
    "connect",
    "serve",
]

DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds :func:`connect` waits for the QUIC/TLS handshake (as long as the attestation)."""

# TLS alerts (RFC 8446 §6.2) that QUIC carries as CRYPTO_ERROR + alert (RFC 9001 §4.8)
_CRYPTO_ERROR: Final = QuicErrorCode.CRYPTO_ERROR
_NO_APPLICATION_PROTOCOL: Final = AlertDescription.no_application_protocol
_CERTIFICATE_ALERTS: Final = frozenset(
    {
        AlertDescription.bad_certificate,
        AlertDescription.unsupported_certificate,
        AlertDescription.certificate_revoked,
        AlertDescription.certificate_expired,
        AlertDescription.certificate_unknown,
        AlertDescription.unknown_ca,
        AlertDescription.certificate_required,
    }
)

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
    def peer_address(self) -> str | None:
        """``host:port`` of the peer (as it appears in the connection's log lines)."""
        return self._protocol.peer_address

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

    Raises :class:`~attquic.errors.ListenError` (one line naming the address) when the UDP
    socket cannot be bound: port in use, address not local, no permission.
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
    try:
        transport, server = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: QuicServer(
                configuration=quic_configuration, create_protocol=create_protocol, retry=retry
            ),
            local_addr=(host, port),
        )
    except OSError as exc:  # EADDRINUSE, EADDRNOTAVAIL, EACCES, gaierror ...
        reason = (exc.strerror or str(exc)).lower()
        raise ListenError(f"cannot listen on {_address(host, port)} (UDP): {reason}") from None
    return AttestedServer(server, transport, tasks, budget)


@contextlib.asynccontextmanager
async def connect(
    host: str,
    port: int,
    *,
    configuration: QuicConfiguration,
    attestation: AttestationConfiguration,
    local_port: int = 0,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
) -> AsyncIterator[AttestedConnection]:
    """Connect to an attested server; yields only once the channel is attested.

    Raises, each with a one-line message:

    * :class:`~attquic.errors.HandshakeTimeout`: no QUIC answer within ``handshake_timeout``
      seconds (nothing listening, wrong port, packets dropped);
    * :class:`~attquic.errors.AlpnRejected`: the server accepts none of our ALPN protocols;
    * :class:`~attquic.errors.CertificateVerificationFailed`: a TLS certificate was rejected
      (its ``reason`` says why);
    * :class:`~attquic.errors.HandshakeFailed`: any other handshake failure;
    * :class:`~attquic.errors.ConnectionClosed` (with the close code): attestation failed on
      either side, or took longer than ``attestation.attestation_timeout``.
    """
    if not configuration.is_client:
        raise ConfigurationError("connect() needs a client QuicConfiguration (is_client=True)")
    if handshake_timeout <= 0:
        raise ConfigurationError("handshake_timeout must be positive")
    quic_configuration = _attested_quic_configuration(configuration)
    attestation = attestation.for_endpoint(quic_configuration)
    address = _address(host, port)
    create_protocol: Any = functools.partial(AttestedQuicProtocol, attestation=attestation)
    async with contextlib.AsyncExitStack() as stack:
        try:
            # wait_connected=False: we wait for the handshake ourselves, with a deadline, and
            # aioquic's own waiter (whose exception would outlive a cancellation) never exists
            client = await stack.enter_async_context(
                quic_connect(
                    host,
                    port,
                    configuration=quic_configuration,
                    create_protocol=create_protocol,
                    local_port=local_port,
                    wait_connected=False,
                )
            )
        except OSError as exc:  # the name does not resolve, no route, ...
            reason = (exc.strerror or str(exc)).lower()
            raise HandshakeFailed(
                f"cannot connect to {address}: {reason}", address=address
            ) from None
        protocol = cast(AttestedQuicProtocol, client)
        protocol.transmit()  # the Initial packet (aioquic leaves it to us without waiting)
        try:
            async with asyncio.timeout(handshake_timeout):
                await protocol.wait_handshake()
        except TimeoutError:
            if protocol.peer_address is None:
                problem = (
                    f"no answer from {address} within {handshake_timeout:g} s "
                    "(is an attquic server listening there, on UDP?)"
                )
            else:
                problem = (
                    f"the QUIC handshake with {address} did not complete within "
                    f"{handshake_timeout:g} s (it answered: overloaded or a lossy path?)"
                )
            raise HandshakeTimeout(problem, address=address) from None
        except ConnectionClosed:
            alpn = quic_configuration.alpn_protocols
            raise _handshake_error(address, protocol.termination, alpn) from None
        await protocol.wait_attested()
        yield AttestedConnection(protocol)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _handshake_error(
    address: str, termination: ConnectionTerminated | None, alpn: list[str] | None
) -> HandshakeFailed:
    """The specific error for a QUIC handshake that ended in ``termination``."""
    if termination is None:
        return HandshakeFailed(f"the QUIC handshake with {address} failed", address=address)
    code, reason = termination.error_code, termination.reason_phrase
    alert = code - _CRYPTO_ERROR if _CRYPTO_ERROR <= code <= _CRYPTO_ERROR + 0xFF else None
    if alert == _NO_APPLICATION_PROTOCOL:
        offered = ", ".join(alpn or []) or "none"
        return AlpnRejected(
            f"{address} accepted none of our ALPN protocols (offered: {offered})",
            address=address,
            code=code,
        )
    if alert in _CERTIFICATE_ALERTS:
        why = reason or AlertDescription(alert).name
        return CertificateVerificationFailed(
            f"TLS certificate verification failed with {address}: {why}",
            address=address,
            code=code,
            reason=why,
        )
    detail = f": {reason}" if reason else ""
    return HandshakeFailed(
        f"the QUIC handshake with {address} failed (QUIC error 0x{code:x}){detail}",
        address=address,
        code=code,
    )
