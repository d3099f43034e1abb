"""A finished connection is freed by reference counting: no reference cycle keeps it for the GC.

aioquic's connection objects refer to themselves (bound methods in dispatch tables and
callbacks); attquic releases those once the connection is terminated
(:mod:`attquic.quic.release`), and raises copies of stored errors so that no traceback ties a
connection or stream to its own frames (:mod:`attquic._reraise`). These tests run real
connections over UDP with the cyclic garbage collector disabled and check that both endpoints'
protocol and QUIC connection objects are gone once the connection has ended, on the normal path
and on the paths where errors are raised into waiting application code.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import pytest
from channel_helpers import (
    StallingAttester,
    attestation,
    connect_local,
    connect_verifying,
    default_attester,
    echo_once,
    running_server,
    simulated_verifier,
)

import attquic
from attquic import AttestedConnection, CloseCode
from attquic._reraise import fresh_copy
from attquic.protocol import AttestedQuicProtocol
from attquic.quic.release import release_terminated
from attquic.tdx.simulated import OTHER_MRTD, SimulatedTdxWarning

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore", category=SimulatedTdxWarning),
]


class Tracked:
    """Weak references to the protocol and QUIC connection objects of each endpoint."""

    def __init__(self) -> None:
        self.refs: dict[str, weakref.ref[Any]] = {}

    def add(self, side: str, connection: AttestedConnection | AttestedQuicProtocol) -> None:
        protocol = (
            connection if isinstance(connection, AttestedQuicProtocol) else (connection._protocol)
        )
        self.refs[f"{side} protocol"] = weakref.ref(protocol)
        self.refs[f"{side} QuicConnection"] = weakref.ref(protocol._quic)

    def alive(self) -> list[str]:
        return [name for name, ref in self.refs.items() if ref() is not None]

    async def wait_freed(self, timeout: float = 10.0) -> None:
        """Until every tracked object is freed (the server drains for 3 PTO after a close)."""
        with anyio.move_on_after(timeout):
            while self.alive():
                await asyncio.sleep(0.02)
        assert self.alive() == [], "still alive without the cyclic GC"


@contextmanager
def collector_off() -> Iterator[None]:
    """No cyclic garbage collection: only reference counting may free anything."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def server_attests() -> attquic.AttestationConfiguration:
    return attestation(attester=default_attester())


@asynccontextmanager
async def tracked_server(
    tracked: Tracked, body: Callable[[AttestedConnection], Awaitable[None]]
) -> AsyncIterator[attquic.AttestedServer]:
    async def handler(connection: AttestedConnection) -> None:
        tracked.add("server", connection)
        await body(connection)

    async with running_server(server_attests(), handler) as server:
        yield server


async def echo_all(connection: AttestedConnection) -> None:
    while True:
        stream = await connection.accept_stream()  # ConnectionClosed at the end
        await stream.send(await stream.receive_all())
        await stream.send_eof()


async def test_a_closed_attested_connection_is_freed_without_the_collector() -> None:
    tracked = Tracked()
    with collector_off():
        async with tracked_server(tracked, echo_all) as server:
            async with connect_verifying(server) as connection:
                tracked.add("client", connection)
                assert await echo_once(connection, b"ping") == b"ping"
                del connection
            await tracked.wait_freed()
    assert len(tracked.refs) == 4


async def test_a_handler_waiting_on_a_stream_is_freed_when_the_peer_closes() -> None:
    """The handler's receive() raises the stream's stored error: a copy, not the original."""
    tracked = Tracked()
    errors: list[type[BaseException]] = []

    async def read_forever(connection: AttestedConnection) -> None:
        stream = await connection.accept_stream()
        try:
            await stream.receive()
            await stream.receive()
        except attquic.ConnectionClosed as exc:
            errors.append(type(exc))
            raise

    with collector_off():
        async with tracked_server(tracked, read_forever) as server:
            async with connect_verifying(server) as connection:
                tracked.add("client", connection)
                stream = await connection.open_stream()
                await stream.send(b"x")
                await asyncio.sleep(0.05)
                connection.close(CloseCode.NO_ERROR)
                with pytest.raises(attquic.ConnectionClosed):
                    await stream.receive()  # our own stream, after our own close
                del connection, stream
            await tracked.wait_freed()
    assert errors == [attquic.ConnectionClosed]


async def refused_then_freed(
    server_attestation: attquic.AttestationConfiguration,
    client_attestation: attquic.AttestationConfiguration,
    code: CloseCode,
) -> None:
    """A client whose connection closes with ``code`` before connect() returns; then both
    endpoints' objects must be freed without the collector."""
    tracked = Tracked()
    protocols: list[AttestedQuicProtocol] = []
    original = AttestedQuicProtocol.__init__

    def recording_init(self: AttestedQuicProtocol, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        protocols.append(self)

    with collector_off(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(AttestedQuicProtocol, "__init__", recording_init)
        async with running_server(server_attestation, echo_all) as server:
            with pytest.raises(attquic.ConnectionClosed) as info:
                async with connect_local(server.port, client_attestation):
                    raise AssertionError("connect() must not return for this connection")
            assert info.value.code == code
            assert len(protocols) == 2
            for protocol in protocols:
                tracked.add("client" if protocol._is_client else "server", protocol)
            # the test's own references; pytest's ExceptionInfo and this frame form a cycle
            del protocol, info
            protocols.clear()
            await tracked.wait_freed()


async def test_a_rejected_peer_leaves_no_cycle_on_either_side() -> None:
    mismatched = attestation(attester=default_attester(mrtd=OTHER_MRTD))
    verifying = attestation(verifier=simulated_verifier())
    await refused_then_freed(mismatched, verifying, CloseCode.POLICY_REJECTED)


async def test_a_timed_out_attestation_leaves_no_cycle_on_either_side() -> None:
    stalling = attestation(attester=StallingAttester())
    verifying = attestation(verifier=simulated_verifier(), attestation_timeout=0.3)
    await refused_then_freed(stalling, verifying, CloseCode.TIMEOUT)


async def test_release_leaves_a_live_connection_alone() -> None:
    async with (
        running_server(server_attests(), echo_all) as server,
        connect_verifying(server) as connection,
    ):
        protocol = connection._protocol
        assert release_terminated(protocol) is False
        assert release_terminated(object()) is False
        assert await echo_once(connection, b"still works") == b"still works"


async def test_calls_on_a_released_connection_fail_as_on_any_closed_one() -> None:
    async with running_server(server_attests(), echo_all) as server:
        async with connect_verifying(server) as connection:
            stream = await connection.open_stream()
            connection.close(CloseCode.NO_ERROR)
            protocol = connection._protocol
            with anyio.fail_after(10):
                while not release_terminated(protocol):  # True once terminated
                    await asyncio.sleep(0.02)
            with pytest.raises(attquic.ConnectionClosed):
                await stream.send(b"late")
            with pytest.raises(attquic.ConnectionClosed):
                await connection.open_stream()
            protocol.close()  # again: a no-op
            protocol.transmit()
            protocol.datagram_received(b"\x40" * 64, ("127.0.0.1", server.port))


def test_a_fresh_copy_keeps_what_the_error_says_but_not_its_traceback() -> None:
    cause = ValueError("why")
    error = attquic.ConnectionClosed(CloseCode.POLICY_REJECTED, "no", by_peer=True)
    error.__cause__ = cause
    try:
        raise error
    except attquic.ConnectionClosed:
        pass
    copy = fresh_copy(error)
    assert copy is not error
    assert type(copy) is attquic.ConnectionClosed
    assert (copy.code, copy.reason, copy.by_peer, str(copy)) == (
        CloseCode.POLICY_REJECTED,
        "no",
        True,
        str(error),
    )
    assert copy.__cause__ is cause
    assert copy.__traceback__ is None


async def test_a_failing_handler_leaves_no_cycle() -> None:
    tracked = Tracked()

    async def failing(connection: AttestedConnection) -> None:
        raise RuntimeError("the application failed")

    # pytest keeps every log record, and handler.failed carries the traceback (frames that
    # name the connection): not a cycle, but it would keep the objects alive for the test
    quiet = pytest.MonkeyPatch.context()
    with collector_off(), quiet as patch:
        patch.setattr(logging.getLogger("attquic"), "disabled", True)
        async with tracked_server(tracked, failing) as server:
            async with connect_verifying(server) as connection:
                tracked.add("client", connection)
                with pytest.raises(attquic.ConnectionClosed):
                    await connection.accept_stream()
                del connection
            await tracked.wait_freed()


def test_release_never_raises() -> None:
    """An aioquic whose internals differ keeps its cycles; nothing reaches the event loop."""

    class Unexpected:
        @property
        def _quic(self) -> object:
            raise RuntimeError("not the internals release expects")

    assert release_terminated(Unexpected()) is False
