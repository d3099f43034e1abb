"""Load: 200 concurrent attested connections over real UDP, each moving 16 KiB both ways.

Every connection is fully attested (simulated TDX quote, full DCAP verification, policy)
before any byte moves. The test checks what load must not break: no byte lost, no byte
crossed between connections, and the server's memory bounded. It asserts no timings.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import warnings

import psutil  # type: ignore[import-untyped]
import pytest
from channel_helpers import (
    attestation,
    client_tls,
    default_attester,
    server_tls,
    simulated_verifier,
)

import attquic
from attquic.tdx.simulated import SimulatedTdxWarning
from attquic.tdx.verifier import TdxAttestation

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning"),
    pytest.mark.timeout(120),
]

CONNECTIONS = 200
PAYLOAD = 16 * 1024
RSS_GROWTH_BOUND = 256 * 1024 * 1024
"""Generous: 200 live connections with their buffers, the verifier's caches and Python's
allocator slack fit in a fraction of it; unbounded buffering (e.g. holding every payload
twice per stream, or never freeing closed connections across rounds) would not."""


def pattern(index: int, direction: bytes) -> bytes:
    """16 KiB that only connection ``index`` sends in ``direction`` (b"up" or b"down")."""
    seed = direction + index.to_bytes(4, "big")
    blocks = (hashlib.sha256(seed + n.to_bytes(4, "big")).digest() for n in range(PAYLOAD // 32))
    return b"".join(blocks)


UP = [pattern(index, b"up") for index in range(CONNECTIONS)]
DOWN = [pattern(index, b"down") for index in range(CONNECTIONS)]
_UP_BY_PREFIX = {data[:32]: index for index, data in enumerate(UP)}


def identify(data: bytes) -> int | None:
    """Which connection's upward pattern ``data`` is, if it is one exactly."""
    index = _UP_BY_PREFIX.get(data[:32])
    return index if index is not None and data == UP[index] else None


class PatternServer:
    """Reads one stream per connection, checks it is exactly one client's pattern, answers
    with that connection's downward pattern."""

    def __init__(self) -> None:
        self.seen: list[int | None] = []
        self.attested = 0

    async def __call__(self, connection: attquic.AttestedConnection) -> None:
        if isinstance(connection.peer_attestation, TdxAttestation):
            self.attested += 1
        stream = await connection.accept_stream()
        data = await stream.receive_all()
        index = identify(data)
        self.seen.append(index)
        if index is not None:
            await stream.send(DOWN[index])
        await stream.send_eof()
        await connection.wait_closed()


async def _one_client(
    port: int, index: int, all_attested: asyncio.Event, attested: list[int]
) -> bytes:
    async with attquic.connect(
        "127.0.0.1",
        port,
        configuration=client_tls(),
        attestation=attestation(verifier=simulated_verifier(), attestation_timeout=90.0),
        handshake_timeout=90.0,  # 200 handshakes at once on a shared machine: not 10 s
    ) as connection:
        assert isinstance(connection.peer_attestation, TdxAttestation)
        attested.append(index)
        if len(attested) == CONNECTIONS:
            all_attested.set()
        await all_attested.wait()  # every connection is open and attested at the same time
        stream = await connection.open_stream()
        await stream.send(UP[index])
        await stream.send_eof()
        return await stream.receive_all()


async def _round(port: int) -> list[bytes]:
    all_attested = asyncio.Event()
    attested: list[int] = []
    return await asyncio.gather(
        *(_one_client(port, index, all_attested, attested) for index in range(CONNECTIONS))
    )


async def test_200_concurrent_attested_connections_move_data_both_ways() -> None:
    process = psutil.Process()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SimulatedTdxWarning)
        attester = default_attester()
    app = PatternServer()
    server = await attquic.serve(
        "127.0.0.1",
        0,
        configuration=server_tls(),
        attestation=attestation(attester=attester, attestation_timeout=90.0),
        handler=app,
    )
    async with server:
        gc.collect()
        rss_before = process.memory_info().rss
        replies = await _round(server.port)
        gc.collect()
        rss_after = process.memory_info().rss

    assert app.attested == 0  # the server does not verify the client in this deployment
    assert sorted(i for i in app.seen if i is not None) == list(range(CONNECTIONS))
    assert None not in app.seen, "a stream carried bytes that are not one client's pattern"
    for index, reply in enumerate(replies):
        assert reply == DOWN[index], f"connection {index} got another's bytes"
    growth = rss_after - rss_before
    print(f"load: {CONNECTIONS} connections, RSS {rss_before >> 20} -> {rss_after >> 20} MiB")
    assert growth < RSS_GROWTH_BOUND, f"RSS grew by {growth / 2**20:.0f} MiB"
