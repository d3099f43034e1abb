"""Hostile peers for the attack suite: plain aioquic endpoints that speak attquic/2 by hand.

A :class:`HostilePeer` is an aioquic protocol (with the TLS exporter captured, so it can build
valid RFC 9261 messages for its own connection) that records everything the attested peer
sends and lets a test script write arbitrary bytes on the control stream, on application
streams and as datagrams. Nothing here goes through attquic's session or gate: the point is to
send what an honest attquic endpoint never would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.server import serve as quic_serve
from aioquic.quic import events as quic_events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from channel_helpers import ALPN, TLS_IDENTITY, client_tls, server_tls
from cryptography.hazmat.primitives import serialization

from attquic import expat, frames, profile
from attquic.attestation import Attester
from attquic.cmw import CMW
from attquic.ea.authenticator import (
    AuthenticatorKeys,
    authenticator_keys,
    complete_authenticator,
)
from attquic.ea.identity import SigningIdentity, generate_self_signed
from attquic.ea.messages import (
    AuthenticatorRequest,
    CertificateEntry,
    CertificateMessage,
    Extension,
    Role,
)
from attquic.ea.schemes import sign
from attquic.errors import FrameError
from attquic.keyschedule import Binding
from attquic.quic import ExportingQuicConnectionProtocol

__all__ = [
    "HostilePeer",
    "forge_authenticator",
    "genuine_authenticator",
    "hostile_client",
    "hostile_server",
    "setup_frame",
]

CONTROL = profile.CONTROL_STREAM_ID
WAIT = 10.0
"""Upper bound on any single wait in an attack test (never reached when things work)."""


def setup_frame(*, requests: bool, attests: bool) -> bytes:
    """An encoded SETUP frame of the default profile (attquic/2, version 2)."""
    return frames.encode_frame(frames.SetupFrame(profile.PROFILE_VERSION, requests, attests))


@dataclass
class _Inbox:
    frames: asyncio.Queue[frames.Frame] = field(default_factory=asyncio.Queue)
    control_bytes: bytearray = field(default_factory=bytearray)
    undecodable: list[str] = field(default_factory=list)
    stream_data: dict[int, bytearray] = field(default_factory=dict)
    resets: dict[int, int] = field(default_factory=dict)
    stop_sending: dict[int, int] = field(default_factory=dict)
    datagrams: list[bytes] = field(default_factory=list)


class HostilePeer(ExportingQuicConnectionProtocol):
    """An aioquic endpoint driven by a test script instead of attquic's session."""

    def __init__(self, quic: QuicConnection, stream_handler: object = None) -> None:
        super().__init__(quic, None)
        self.inbox = _Inbox()
        self._decoder = frames.FrameDecoder(1 << 20)
        self.handshake_done = asyncio.Event()
        self.terminated: asyncio.Future[quic_events.ConnectionTerminated] = (
            self._loop.create_future()
        )
        self.script_task: asyncio.Task[None] | None = None
        self.handshake: quic_events.HandshakeCompleted | None = None

    # --- observation ------------------------------------------------------------------------

    def quic_event_received(self, event: quic_events.QuicEvent) -> None:
        if not isinstance(event, quic_events.StreamDataReceived):
            # aioquic's own stream readers/writers would close streams when collected
            super().quic_event_received(event)
        inbox = self.inbox
        if isinstance(event, quic_events.HandshakeCompleted):
            self.handshake = event
            self.handshake_done.set()
        elif isinstance(event, quic_events.StreamDataReceived):
            if event.stream_id == CONTROL:
                inbox.control_bytes += event.data
                try:
                    for frame in self._decoder.feed(event.data):
                        inbox.frames.put_nowait(frame)
                except FrameError as exc:
                    inbox.undecodable.append(str(exc))
            else:
                inbox.stream_data.setdefault(event.stream_id, bytearray()).extend(event.data)
        elif isinstance(event, quic_events.StreamReset):
            inbox.resets[event.stream_id] = event.error_code
        elif isinstance(event, quic_events.StopSendingReceived):
            inbox.stop_sending[event.stream_id] = event.error_code
        elif isinstance(event, quic_events.DatagramFrameReceived):
            inbox.datagrams.append(event.data)
        elif isinstance(event, quic_events.ConnectionTerminated) and not self.terminated.done():
            self.terminated.set_result(event)

    async def next_frame(self, kind: type[frames.Frame] | None = None) -> frames.Frame:
        """The next control frame the attested peer sent (of ``kind``, if given)."""
        frame = await asyncio.wait_for(self.inbox.frames.get(), WAIT)
        if kind is not None and not isinstance(frame, kind):
            raise AssertionError(f"expected {kind.__name__}, got {frame!r}")
        return frame

    async def next_request(self) -> AuthenticatorRequest:
        frame = await self.next_frame(frames.AuthenticatorRequestFrame)
        assert isinstance(frame, frames.AuthenticatorRequestFrame)
        return AuthenticatorRequest.decode(frame.request)

    async def close_code(self) -> int:
        """The application error code the connection ended with (whoever closed it)."""
        event = await asyncio.wait_for(asyncio.shield(self.terminated), WAIT)
        return event.error_code

    # --- injection --------------------------------------------------------------------------

    def send_control(self, data: bytes | frames.Frame, *, end_stream: bool = False) -> None:
        """Write raw bytes (or one encoded frame) on the control stream."""
        if not isinstance(data, bytes):
            data = frames.encode_frame(data)
        self.send_stream(CONTROL, data, end_stream=end_stream)

    def send_stream(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        self._quic.send_stream_data(stream_id, data, end_stream)
        self.transmit()

    def send_datagram(self, data: bytes) -> None:
        self._quic.send_datagram_frame(data)
        self.transmit()

    def next_stream_id(self, *, unidirectional: bool = False) -> int:
        return self._quic.get_next_available_stream_id(is_unidirectional=unidirectional)

    def ea_keys(self, sender: Role) -> AuthenticatorKeys:
        """RFC 9261 keys of ``sender`` on this connection (from the captured exporter)."""
        return authenticator_keys(self.exporter, sender)

    @property
    def role(self) -> Role:
        return Role.CLIENT if self._quic.configuration.is_client else Role.SERVER


def forge_authenticator(
    keys: AuthenticatorKeys,
    request: bytes,
    context: bytes,
    identity: SigningIdentity,
    scheme: int,
    entry_extensions: Sequence[Sequence[Extension]],
    *,
    extra_entries: int = 0,
    signer: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """An RFC 9261 authenticator with full control over each entry's extensions.

    ``entry_extensions[i]`` goes on entry ``i``; the chain is the identity's leaf followed by
    ``extra_entries`` throwaway certificates (so extensions can sit on non-leaf entries). The
    CertificateVerify and Finished are valid for ``keys``; ``signer`` replaces the identity's
    own signing (for schemes attquic itself would never use).
    """
    der = [identity.leaf.public_bytes(serialization.Encoding.DER)]
    der += [
        generate_self_signed("p256", f"filler {i}").leaf.public_bytes(serialization.Encoding.DER)
        for i in range(extra_entries)
    ]
    entries = tuple(
        CertificateEntry(cert, tuple(entry_extensions[i]) if i < len(entry_extensions) else ())
        for i, cert in enumerate(der)
    )
    certificate = CertificateMessage(context, entries).encode()
    if signer is None:
        signer = functools.partial(sign, identity.private_key, scheme)
    return complete_authenticator(keys, request, certificate, scheme, signer)


async def genuine_evidence(
    peer: HostilePeer, request: AuthenticatorRequest, attester: Attester, identity: SigningIdentity
) -> CMW:
    """Evidence an honest attester on ``peer``'s connection would produce for ``request``."""
    binding = Binding.compute(peer.exporter, request.context, identity.spki_der)
    return await attester.attest(binding)


async def genuine_authenticator(
    peer: HostilePeer,
    request: AuthenticatorRequest,
    attester: Attester,
    identity: SigningIdentity,
    *,
    cmw: CMW | None = None,
) -> bytes:
    """The authenticator an honest attester on ``peer``'s connection sends for ``request``
    (``cmw`` substitutes the evidence, keeping everything else honest)."""
    if cmw is None:
        cmw = await genuine_evidence(peer, request, attester, identity)
    scheme = 0x0403  # ecdsa_secp256r1_sha256: the identities here are P-256
    return forge_authenticator(
        peer.ea_keys(peer.role),
        request.encode(),
        request.context,
        identity,
        scheme,
        [[expat.leaf_extension(cmw)]],
    )


Script = Callable[[HostilePeer], Awaitable[None]]


@contextlib.asynccontextmanager
async def hostile_server(
    script: Script, *, configuration: QuicConfiguration | None = None
) -> AsyncIterator[tuple[int, list[HostilePeer]]]:
    """A plain aioquic server on 127.0.0.1 running ``script`` on each connection once its
    handshake completed; yields (port, peers)."""
    peers: list[HostilePeer] = []

    def create(quic: QuicConnection, stream_handler: object = None) -> HostilePeer:
        peer = HostilePeer(quic)
        peers.append(peer)

        async def run() -> None:
            await peer.handshake_done.wait()
            await script(peer)

        peer.script_task = asyncio.get_running_loop().create_task(run())
        return peer

    server = await quic_serve(
        "127.0.0.1",
        0,
        configuration=configuration or server_tls(),
        create_protocol=create,
    )
    try:
        transport = server._transport
        assert transport is not None
        yield transport.get_extra_info("sockname")[1], peers
    finally:
        for peer in peers:
            if peer.script_task is not None:
                peer.script_task.cancel()
        server.close()


@contextlib.asynccontextmanager
async def hostile_client(
    port: int,
    *,
    configuration: QuicConfiguration | None = None,
    wait_connected: bool = True,
    session_ticket_handler: Callable[[object], None] | None = None,
) -> AsyncIterator[HostilePeer]:
    """A plain aioquic client connected to 127.0.0.1:``port``."""
    async with quic_connect(
        "127.0.0.1",
        port,
        configuration=configuration or client_tls(),
        create_protocol=functools.partial(HostilePeer),
        wait_connected=wait_connected,
        session_ticket_handler=session_ticket_handler,
    ) as client:
        assert isinstance(client, HostilePeer)
        yield client


def datagram_configs() -> tuple[QuicConfiguration, QuicConfiguration]:
    """(server, client) TLS configurations that negotiate QUIC DATAGRAM frames."""
    server, client = server_tls(), client_tls()
    server.max_datagram_frame_size = client.max_datagram_frame_size = 65536
    return server, client


__all__ += ["ALPN", "TLS_IDENTITY", "datagram_configs", "genuine_evidence"]
