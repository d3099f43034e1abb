"""The aioquic names attquic relies on still exist, and the library uses no others.

If this fails after an aioquic upgrade, read attquic/quic/_aioquic_private.py: the failing
name says which part of attquic (the exporter hook or the adapter) must be adapted.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from aioquic import tls
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from channel_helpers import client_tls, server_tls

from attquic.quic._aioquic_private import PRIVATE_NAMES

ATTQUIC = Path(__file__).resolve().parent.parent / "attquic"


def _handshake() -> tuple[QuicConnection, QuicConnection]:
    """A full QUIC handshake in memory (no sockets): datagrams shuttled by hand."""
    client = QuicConnection(configuration=client_tls())
    server_config: QuicConfiguration = server_tls()
    server = QuicConnection(
        configuration=server_config,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    now = 0.0
    client.connect(("127.0.0.1", 4433), now=now)
    for _ in range(10):
        for data, _addr in client.datagrams_to_send(now=now):
            server.receive_datagram(data, ("127.0.0.1", 1234), now=now)
        for data, _addr in server.datagrams_to_send(now=now):
            client.receive_datagram(data, ("127.0.0.1", 4433), now=now)
        now += 0.01
    return client, server


def _instances() -> dict[str, Any]:
    client, _ = _handshake()
    assert client.tls.key_schedule is not None, "the in-memory handshake did not complete"
    return {
        "aioquic.quic.connection.QuicConnection": client,
        "aioquic.tls.Context": client.tls,
        "aioquic.tls.KeySchedule": client.tls.key_schedule,
        "aioquic.quic.recovery.QuicPacketRecovery": client._loss,
        "aioquic.quic.crypto.CryptoContext": client._cryptos[tls.Epoch.ONE_RTT].recv,
        "aioquic.asyncio.protocol.QuicConnectionProtocol": QuicConnectionProtocol(client),
    }


def _class(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@pytest.mark.anyio
@pytest.mark.parametrize("entry", PRIVATE_NAMES, ids=lambda e: f"{e.owner}.{e.name}")
async def test_private_aioquic_name_still_exists(entry: Any) -> None:
    cls = _class(entry.owner)
    if entry.kind == "method":
        assert callable(getattr(cls, entry.name, None)), (
            f"aioquic changed: {entry.owner}.{entry.name} is gone; {entry.used_by} relies on it"
            f" ({entry.why}). See attquic/quic/_aioquic_private.py."
        )
        return
    if cls is QuicConnectionProtocol and entry.name == "_quic":
        quic = QuicConnection(configuration=client_tls())
        instance: Any = QuicConnectionProtocol(quic)
        assert getattr(instance, entry.name, None) is quic, (
            f"aioquic changed: {entry.owner}.{entry.name} no longer holds the QuicConnection"
        )
        return
    instance = _instances()[entry.owner]
    assert hasattr(instance, entry.name), (
        f"aioquic changed: {entry.owner}.{entry.name} is gone; {entry.used_by} relies on it"
        f" ({entry.why}). See attquic/quic/_aioquic_private.py."
    )


# aioquic's private attributes of QuicConnectionProtocol and QuicServer, besides ``_quic``
_FORBIDDEN = re.compile(
    r"\bself\._(loop|closed|transport|timer|timer_at|connected|connected_waiter|"
    r"stream_readers|ping_waiters|transmit_task|stream_handler)\b"
    r"|\._server\._\w+|\._quic\._\w+|\bquic\._(?!update_traffic_key\b)\w+"
)


# getattr(obj, "_name"), hasattr, setattr and attquic.quic.release's _replace(obj, "_name", ...)
_GETATTR = re.compile(r"""\b(?:getattr|hasattr|setattr|_replace)\([^,]+,\s*["'](_\w+)["']""")


def test_the_library_uses_no_other_private_aioquic_name() -> None:
    listed = {entry.name for entry in PRIVATE_NAMES}
    found = []
    for path in sorted(ATTQUIC.rglob("*.py")):
        if path.name == "_aioquic_private.py" or "verifier_service" in path.parts:
            continue
        text = path.read_text()
        if "aioquic" not in text and "AttestedQuicProtocol" not in text:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            code = line.split("#")[0]
            unlisted = [name for name in _GETATTR.findall(code) if name not in listed]
            if _FORBIDDEN.search(code) or unlisted:
                found.append(f"{path.relative_to(ATTQUIC.parent)}:{number}: {line.strip()}")
    assert found == [], "private aioquic names outside attquic/quic/_aioquic_private.py:\n" + (
        "\n".join(found)
    )
