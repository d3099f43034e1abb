"""Every aioquic name attquic relies on that aioquic does not document as public, in one place.

aioquic (pinned ``aioquic>=1.3,<2`` in pyproject.toml) offers no exporter API, no public
handle on a protocol's ``QuicConnection`` and no way to release a terminated connection's
reference cycles, so attquic uses the names below and nothing else private.
``tests/test_aioquic_private.py`` checks each one against the installed aioquic and fails,
naming it, if a release renames or removes it; it also checks that the library code
touches no other private name of aioquic's protocol or server classes (``_loop``, ``_closed``,
``QuicServer._transport`` were replaced by ``asyncio.get_running_loop()``, an own event and the
transport ``loop.create_datagram_endpoint`` returns).

The test suite's hostile peers and the benchmarks poke further aioquic internals on purpose
(``tests/attack_helpers.py``, ``benchmarks/``); they are not part of the library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["PRIVATE_NAMES", "PrivateName"]


@dataclass(frozen=True)
class PrivateName:
    owner: str
    """Dotted path of the aioquic class the name belongs to."""
    name: str
    kind: str
    """"method" (looked up on the class) or "attribute" (set on instances)."""
    used_by: str
    why: str


PRIVATE_NAMES: Final[tuple[PrivateName, ...]] = (
    PrivateName(
        "aioquic.quic.connection.QuicConnection",
        "_update_traffic_key",
        "method",
        "attquic/quic/exporter_hook.py",
        "wrapped on one connection instance to capture the exporter master secret at the first "
        "1-RTT key install (aioquic has no exporter API)",
    ),
    PrivateName(
        "aioquic.quic.connection.QuicConnection",
        "tls",
        "attribute",
        "attquic/quic/exporter_hook.py",
        "the connection's tls.Context, read when the 1-RTT key is installed (undocumented)",
    ),
    PrivateName(
        "aioquic.tls.Context",
        "key_schedule",
        "attribute",
        "attquic/quic/exporter_hook.py",
        "the negotiated KeySchedule at the master-secret stage (undocumented)",
    ),
    PrivateName(
        "aioquic.tls.KeySchedule",
        "derive_secret",
        "method",
        "attquic/quic/exporter_hook.py",
        'Derive-Secret(., "exp master"/"s ap traffic", transcript) (undocumented)',
    ),
    PrivateName(
        "aioquic.tls.KeySchedule",
        "algorithm",
        "attribute",
        "attquic/quic/exporter_hook.py",
        "the suite hash of the exporter (undocumented)",
    ),
    PrivateName(
        "aioquic.tls.KeySchedule",
        "cipher_suite",
        "attribute",
        "attquic/quic/exporter_hook.py",
        "self-check: the schedule's suite is the installed key's suite (undocumented)",
    ),
    PrivateName(
        "aioquic.tls.KeySchedule",
        "generation",
        "attribute",
        "attquic/quic/exporter_hook.py",
        "self-check: the schedule is at the master secret, generation 3 (undocumented)",
    ),
    PrivateName(
        "aioquic.tls.Context",
        "_peer_certificate",
        "attribute",
        "attquic/quic/exporter_hook.py",
        "the leaf certificate the peer presented in TLS, for the authenticator identity check "
        "(aioquic has no public accessor, aiortc/aioquic#586); read with getattr, absent reads "
        "as no certificate (fails closed)",
    ),
    PrivateName(
        "aioquic.asyncio.protocol.QuicConnectionProtocol",
        "_quic",
        "attribute",
        "attquic/protocol.py",
        "the protocol's QuicConnection, the de-facto interface of QuicConnectionProtocol "
        "subclasses (aioquic's own HTTP/3 examples use it); no public accessor exists",
    ),
    PrivateName(
        "aioquic.quic.connection.QuicConnection",
        "_state",
        "attribute",
        "attquic/quic/release.py",
        "the connection's state: cycles are only broken once it is TERMINATED (no public "
        "accessor; absent reads as not terminated, so nothing is touched)",
    ),
    PrivateName(
        "aioquic.quic.connection.QuicConnection",
        "_QuicConnection__frame_handlers",
        "attribute",
        "attquic/quic/release.py",
        "the frame dispatch table of bound methods, emptied after termination (a reference "
        "cycle through the connection)",
    ),
    PrivateName(
        "aioquic.quic.connection.QuicConnection",
        "_loss",
        "attribute",
        "attquic/quic/release.py",
        "the loss recovery, whose probe callback is the connection's bound method",
    ),
    PrivateName(
        "aioquic.quic.recovery.QuicPacketRecovery",
        "_send_probe",
        "attribute",
        "attquic/quic/release.py",
        "the probe callback (QuicConnection._send_probe), replaced by a no-op after termination",
    ),
    PrivateName(
        "aioquic.quic.connection.QuicConnection",
        "_cryptos",
        "attribute",
        "attquic/quic/release.py",
        "the CryptoPair of each epoch, whose key-update logging callbacks name the connection",
    ),
    PrivateName(
        "aioquic.quic.connection.QuicConnection",
        "_cryptos_initial",
        "attribute",
        "attquic/quic/release.py",
        "the Initial CryptoPair of each version, as _cryptos",
    ),
    PrivateName(
        "aioquic.quic.crypto.CryptoContext",
        "_setup_cb",
        "attribute",
        "attquic/quic/release.py",
        "key-installed logging callback (a partial of a connection method), reset to aioquic's "
        "NoCallback after termination",
    ),
    PrivateName(
        "aioquic.quic.crypto.CryptoContext",
        "_teardown_cb",
        "attribute",
        "attquic/quic/release.py",
        "key-retired logging callback, as _setup_cb",
    ),
    PrivateName(
        "aioquic.asyncio.protocol.QuicConnectionProtocol",
        "_connection_id_issued_handler",
        "attribute",
        "attquic/quic/release.py",
        "set by QuicServer to a partial naming the protocol; reset to a no-op after termination",
    ),
    PrivateName(
        "aioquic.asyncio.protocol.QuicConnectionProtocol",
        "_connection_id_retired_handler",
        "attribute",
        "attquic/quic/release.py",
        "as _connection_id_issued_handler",
    ),
    PrivateName(
        "aioquic.asyncio.protocol.QuicConnectionProtocol",
        "_connection_terminated_handler",
        "attribute",
        "attquic/quic/release.py",
        "as _connection_id_issued_handler (QuicServer has called it by then)",
    ),
)
