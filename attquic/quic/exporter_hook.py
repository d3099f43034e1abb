"""TLS 1.3 exporters (RFC 8446 §7.5) for aioquic connections.

aioquic derives every TLS 1.3 secret except ``exporter_master_secret`` and offers no exporter
API. This module captures that secret at the only point where aioquic's key schedule holds
exactly what RFC 8446 §7.1 requires: the first 1-RTT traffic-key installation. There, on both
sides, the schedule's stage secret is the master secret and its running transcript hash covers
ClientHello..server Finished, so ``Derive-Secret(., "exp master", .)`` is the exporter master
secret. Any later moment is wrong: the transcript then also covers the client's authentication
messages or Finished (on the server even before they arrive).

How (one connection at a time, no process-wide patching): :func:`capture_exporter` replaces the
connection's ``_update_traffic_key`` bound method with a wrapper on that one instance. It must
be installed before aioquic creates the connection's ``tls.Context`` (``QuicConnection``
``_initialize``): on a server that happens inside the first datagram, together with the whole
server flight, so the protocol constructor is the place (:class:`ExportingQuicConnectionProtocol`
does it there). On the first 1-RTT key install the wrapper checks, in constant time, that the
secret being installed equals ``Derive-Secret(schedule, "s ap traffic")``, which proves the
schedule is at the expected point, then stores ``Derive-Secret(schedule, "exp master")``.

Fail closed: if the check fails (a future aioquic derives keys in another order or shape), the
wrapper raises :class:`aioquic.tls.AlertInternalError`. aioquic turns a TLS alert raised during
handshake processing into CONNECTION_CLOSE with ``CRYPTO_ERROR + internal_error`` (0x150); the
peer sees the handshake fail (a client ``connect()`` raises ``ConnectionError``) and no exporter
is ever available on either side.

Fragility, stated plainly (every such name is listed in ``attquic/quic/_aioquic_private.py``,
checked by a test): this relies on names aioquic does not document as public, namely
``QuicConnection._update_traffic_key`` (the method ``_initialize`` installs as
``tls.update_traffic_key_cb``), ``QuicConnection.tls``, ``tls.Context.key_schedule`` with its
``KeySchedule.derive_secret``/``algorithm``/``cipher_suite``/``generation``, and on the order in
which ``tls.Context`` derives secrets. These are unchanged from aioquic 0.9 to 1.7.2; attquic
pins ``aioquic>=1.3,<2`` (pyproject.toml) and keeps two regression tests that must stay green
before that range is widened: the RFC 8448 replay (tests/test_keyschedule.py) and the OpenSSL
cross-check (tests/test_exporter_openssl.py). The self-check above turns a silent change into a
failed handshake rather than a wrong exporter.
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Callable
from typing import Final

from aioquic import tls
from aioquic.asyncio.protocol import QuicConnectionProtocol, QuicStreamHandler
from aioquic.quic.connection import QuicConnection
from cryptography import x509

from attquic.errors import ConfigurationError, ExporterUnavailable
from attquic.keyschedule import ExporterSecret

__all__ = [
    "ExporterCapture",
    "ExportingQuicConnectionProtocol",
    "TrafficKeyCallback",
    "capture_exporter",
]

#: The signature of ``tls.Context.update_traffic_key_cb`` (and of the method aioquic installs
#: there, ``QuicConnection._update_traffic_key``).
TrafficKeyCallback = Callable[[tls.Direction, tls.Epoch, tls.CipherSuite, bytes], None]

#: TLS 1.3 suite hashes attquic supports, by cryptography's hash name.
_SUITE_HASHES: Final = frozenset({"sha256", "sha384"})

#: The key-schedule generation that holds the master secret (1 early, 2 handshake, 3 master).
_MASTER_GENERATION: Final = 3


class ExporterCapture:
    """The exporter master secret of one TLS 1.3 handshake, once captured.

    Create it with :func:`capture_exporter` (QUIC connection) or :meth:`attach_to_tls`
    (a bare ``aioquic.tls.Context``). It is an :class:`attquic.keyschedule.Exporter` once
    :attr:`captured` is true; before that every accessor raises
    :class:`~attquic.errors.ExporterUnavailable`.
    """

    def __init__(self, tls_context: Callable[[], tls.Context], *, is_client: bool) -> None:
        """``tls_context`` returns the handshake's ``tls.Context`` when a key is installed."""
        self._tls_context = tls_context
        self._is_client = is_client
        self._result: tuple[ExporterSecret, tls.CipherSuite] | None = None
        self._failure: str | None = None
        self._seen_one_rtt = False

    # --- installation ------------------------------------------------------------------------

    @classmethod
    def attach_to_tls(cls, context: tls.Context, *, is_client: bool) -> ExporterCapture:
        """Capture from a bare ``tls.Context`` by wrapping its ``update_traffic_key_cb``.

        Call before the context handles its first message. ``is_client`` must be the value the
        context was created with.
        """
        capture = cls(lambda: context, is_client=is_client)
        context.update_traffic_key_cb = capture.wrap(context.update_traffic_key_cb)
        return capture

    def wrap(self, original: TrafficKeyCallback) -> TrafficKeyCallback:
        """A traffic-key callback that captures the exporter, then calls ``original``."""

        def on_traffic_key(
            direction: tls.Direction, epoch: tls.Epoch, cipher_suite: tls.CipherSuite, secret: bytes
        ) -> None:
            if epoch == tls.Epoch.ONE_RTT and not self._seen_one_rtt:
                self._seen_one_rtt = True
                self._capture(direction, cipher_suite, secret)
            original(direction, epoch, cipher_suite, secret)

        return on_traffic_key

    # --- the capture itself ------------------------------------------------------------------

    def _capture(
        self, direction: tls.Direction, cipher_suite: tls.CipherSuite, secret: bytes
    ) -> None:
        schedule = self._checked_schedule(direction, cipher_suite, secret)
        exporter = ExporterSecret(
            hash_name=schedule.algorithm.name, secret=schedule.derive_secret(b"exp master")
        )
        self._result = (exporter, cipher_suite)

    def _checked_schedule(
        self, direction: tls.Direction, cipher_suite: tls.CipherSuite, secret: bytes
    ) -> tls.KeySchedule:
        """The key schedule, proven to be where RFC 8446 derives "exp master".

        :raises aioquic.tls.AlertInternalError: it is not; aioquic aborts the handshake.
        """

        def refuse(problem: str) -> tls.AlertInternalError:
            self._failure = problem
            return tls.AlertInternalError(f"exporter capture: {problem}")

        # Both sides first install server_application_traffic_secret_0: the client to decrypt,
        # the server to encrypt.
        expected_direction = tls.Direction.DECRYPT if self._is_client else tls.Direction.ENCRYPT
        if direction != expected_direction:
            raise refuse("first 1-RTT key has an unexpected direction")
        schedule = getattr(self._tls_context(), "key_schedule", None)
        if not isinstance(schedule, tls.KeySchedule):
            raise refuse("no negotiated key schedule")
        if schedule.generation != _MASTER_GENERATION:
            raise refuse("key schedule is not at the master secret")
        if schedule.cipher_suite != cipher_suite:
            raise refuse("key schedule suite differs from the installed key's suite")
        if schedule.algorithm.name not in _SUITE_HASHES:
            raise refuse("unsupported suite hash")
        if not hmac.compare_digest(schedule.derive_secret(b"s ap traffic"), secret):
            raise refuse("key schedule does not reproduce the server application traffic secret")
        return schedule

    # --- results -----------------------------------------------------------------------------

    @property
    def captured(self) -> bool:
        """True once the exporter master secret has been captured and checked."""
        return self._result is not None

    @property
    def failure(self) -> str | None:
        """Why the capture aborted the handshake, or None."""
        return self._failure

    def _require(self) -> tuple[ExporterSecret, tls.CipherSuite]:
        if self._result is None:
            reason = self._failure or "the handshake has not reached the 1-RTT keys"
            raise ExporterUnavailable(f"no TLS exporter: {reason}")
        return self._result

    @property
    def exporter(self) -> ExporterSecret:
        """The captured exporter master secret and its hash."""
        return self._require()[0]

    @property
    def hash_name(self) -> str:
        """The negotiated suite hash: "sha256" or "sha384"."""
        return self.exporter.hash_name

    @property
    def cipher_suite(self) -> tls.CipherSuite:
        """The negotiated TLS 1.3 cipher suite."""
        return self._require()[1]

    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
        """TLS-Exporter(label, context, length) (RFC 8446 §7.5) for this connection."""
        return self.exporter.export_keying_material(label, context, length)


class _CapturingUpdateTrafficKey:
    """The per-instance replacement of ``QuicConnection._update_traffic_key``."""

    def __init__(self, capture: ExporterCapture, original: TrafficKeyCallback) -> None:
        self.capture = capture
        self._call = capture.wrap(original)

    def __call__(
        self,
        direction: tls.Direction,
        epoch: tls.Epoch,
        cipher_suite: tls.CipherSuite,
        secret: bytes,
    ) -> None:
        self._call(direction, epoch, cipher_suite, secret)


def capture_exporter(quic: QuicConnection) -> ExporterCapture:
    """Capture the TLS exporter master secret of ``quic``'s handshake.

    Wraps this one connection's ``_update_traffic_key``; no other connection is affected.
    Must be called before the connection starts its handshake (before ``connect()`` on a
    client, before the first datagram on a server). Calling it again on the same connection
    returns the same capture.

    :raises ConfigurationError: the handshake has already started.
    """
    installed = vars(quic).get("_update_traffic_key")
    if isinstance(installed, _CapturingUpdateTrafficKey):
        return installed.capture
    if "tls" in vars(quic):
        raise ConfigurationError("install the exporter capture before the handshake starts")
    capture = ExporterCapture(lambda: quic.tls, is_client=quic.configuration.is_client)
    quic._update_traffic_key = _CapturingUpdateTrafficKey(  # type: ignore[method-assign]
        capture, quic._update_traffic_key
    )
    return capture


class ExportingQuicConnectionProtocol(QuicConnectionProtocol):
    """An aioquic protocol whose connection offers TLS exporters (RFC 8446 §7.5).

    Pass it as ``create_protocol`` to :func:`aioquic.asyncio.serve` or
    :func:`aioquic.asyncio.connect`, or subclass it. The capture is installed in the
    constructor, before aioquic processes any packet. Exporters are available once the
    handshake has completed (on a server, from its first flight on).
    """

    def __init__(self, quic: QuicConnection, stream_handler: QuicStreamHandler | None = None):
        self._exporter_capture = capture_exporter(quic)
        super().__init__(quic, stream_handler=stream_handler)

    @property
    def exporter_capture(self) -> ExporterCapture:
        """The capture state of this connection's exporter master secret."""
        return self._exporter_capture

    @property
    def exporter(self) -> ExporterSecret:
        """This connection's exporter master secret (an :class:`~attquic.keyschedule.Exporter`).

        :raises ExporterUnavailable: before the 1-RTT keys, or if the capture failed.
        """
        return self._exporter_capture.exporter

    @property
    def tls_hash_name(self) -> str:
        """The negotiated suite hash, "sha256" or "sha384" (RFC 9261 exporter length source).

        :raises ExporterUnavailable: before the 1-RTT keys, or if the capture failed.
        """
        return self._exporter_capture.hash_name

    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
        """TLS-Exporter(label, context, length) (RFC 8446 §7.5) for this connection.

        :raises ExporterUnavailable: before the 1-RTT keys, or if the capture failed.
        """
        return self._exporter_capture.export_keying_material(label, context, length)

    @property
    def tls_peer_certificate(self) -> x509.Certificate | None:
        """The leaf certificate the peer presented in the TLS handshake, if any.

        aioquic keeps it in a private attribute of its TLS context; a missing or unexpected
        value reads as "no certificate", which fails closed (the authenticator then needs
        another identity).
        """
        context = getattr(self._quic, "tls", None)
        certificate = getattr(context, "_peer_certificate", None)
        return certificate if isinstance(certificate, x509.Certificate) else None

    @property
    def tls_peer_verified(self) -> bool:
        """Whether TLS validated :attr:`tls_peer_certificate` during the handshake.

        Only a client with certificate verification on does: aioquic servers never validate
        client certificates.
        """
        configuration = self._quic.configuration
        return (
            configuration.is_client
            and configuration.verify_mode != ssl.CERT_NONE
            and self.tls_peer_certificate is not None
        )
