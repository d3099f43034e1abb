"""Let reference counting free a terminated aioquic connection, instead of the garbage collector.

An aioquic ``QuicConnection`` refers to itself through bound methods it keeps: its frame
dispatch table, the callbacks of its ``tls.Context``, its loss recovery's probe callback, the
key-update logging callbacks of each ``CryptoPair``; ``QuicServer`` adds three callbacks on the
protocol that name the protocol. So every connection, with everything it holds (streams, packet
spaces, crypto contexts, the protocol and attquic's session: ~280 objects per side), is cyclic
garbage that only the cyclic garbage collector frees. The collector runs whenever allocations
outnumber deallocations by 700, so a server that holds each connection's objects until a
collection pays for it in collections during later handshakes (measured in
docs/benchmarks.md: most of the attested handshake's excess over plain aioquic was collections).

:func:`release_terminated` replaces each of those self-references with the no-op aioquic itself
installs by default, once the connection is TERMINATED. From then on aioquic calls none of them:
``receive_datagram``, ``datagrams_to_send`` and ``get_timer`` return at once in an end state (so
no timer fires again), and the server has already forgotten the connection's IDs. The last
reference to the protocol then frees the whole connection at once.

It is best-effort by design: the aioquic names it relies on are private (each is listed, with
this module as its user, in attquic's ``_aioquic_private`` module, whose test checks them); if a
future aioquic renames one, that cycle is simply left to the garbage collector as before. It
never raises and never runs before termination.
"""

from __future__ import annotations

from typing import Any, Final

from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.crypto import NoCallback

__all__ = ["release_terminated"]

#: The ``tls.Context`` callbacks that ``QuicConnection`` binds to itself, with the value a fresh
#: context has.
_TLS_CALLBACKS: Final[dict[str, Any]] = {
    "alpn_cb": None,
    "get_session_ticket_cb": None,
    "new_session_ticket_cb": None,
    "update_traffic_key_cb": lambda direction, epoch, cipher_suite, secret: None,
}


def _ignore_connection_id(connection_id: bytes) -> None:
    return None


def _ignore_termination() -> None:
    return None


def release_terminated(protocol: Any) -> bool:
    """Break the reference cycles of ``protocol``'s terminated connection; True if it did.

    ``protocol`` is an :class:`aioquic.asyncio.QuicConnectionProtocol`. A connection that is not
    TERMINATED is left untouched (False). Never raises: an aioquic whose internals differ from
    what this module expects keeps its cycles, for the garbage collector (False).
    """
    try:
        return _release(protocol)
    except Exception:
        return False


def _release(protocol: Any) -> bool:
    quic = getattr(protocol, "_quic", None)
    if not isinstance(quic, QuicConnection):
        return False
    if getattr(quic, "_state", None) is not QuicConnectionState.TERMINATED:
        return False
    # the protocol callbacks QuicServer registers (partials naming the protocol)
    _replace(protocol, "_connection_id_issued_handler", _ignore_connection_id)
    _replace(protocol, "_connection_id_retired_handler", _ignore_connection_id)
    _replace(protocol, "_connection_terminated_handler", _ignore_termination)
    # the connection's own bound methods: the instance attribute the exporter hook installed
    # (attquic.quic.exporter_hook), the frame handlers, the TLS and recovery callbacks
    vars(quic).pop("_update_traffic_key", None)
    _replace(quic, "_QuicConnection__frame_handlers", {})
    tls_context = getattr(quic, "tls", None)
    for name, default in _TLS_CALLBACKS.items():
        _replace(tls_context, name, default)
    _replace(getattr(quic, "_loss", None), "_send_probe", _ignore_termination)
    for pairs in (getattr(quic, "_cryptos", None), getattr(quic, "_cryptos_initial", None)):
        for pair in pairs.values() if isinstance(pairs, dict) else ():
            for context in (getattr(pair, "recv", None), getattr(pair, "send", None)):
                _replace(context, "_setup_cb", NoCallback)
                _replace(context, "_teardown_cb", NoCallback)
    return True


def _replace(owner: object, name: str, value: object) -> None:
    """Set ``owner.name`` to ``value`` if ``owner`` has such an attribute."""
    if owner is not None and hasattr(owner, name):
        setattr(owner, name, value)
