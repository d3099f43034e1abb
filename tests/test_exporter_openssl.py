"""Cross-check the captured exporter against an independent TLS 1.3 stack (OpenSSL).

aioquic's bare ``tls.Context`` (client or server) completes a TLS 1.3 handshake with a
pyOpenSSL memory-BIO connection through the record layer in ``tests/_tls13_record.py``. The
exporter master secret is captured exactly as the QUIC hook does it (``ExporterCapture`` on the
context's ``update_traffic_key_cb``) and must equal OpenSSL's ``EXPORTER_SECRET`` keylog line,
and its exporters must equal ``SSL_export_keying_material``, for every suite, both roles, with
and without client certificates.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import pytest
from _exporter_certs import SelfSigned, self_signed
from _tls13_record import AioquicTlsEndpoint
from aioquic import tls
from OpenSSL import SSL

from attquic import profile
from attquic.quic import ExporterCapture

SUITES = [
    pytest.param(tls.CipherSuite.AES_128_GCM_SHA256, "TLS_AES_128_GCM_SHA256", id="aes128gcm"),
    pytest.param(tls.CipherSuite.AES_256_GCM_SHA384, "TLS_AES_256_GCM_SHA384", id="aes256gcm"),
    pytest.param(
        tls.CipherSuite.CHACHA20_POLY1305_SHA256, "TLS_CHACHA20_POLY1305_SHA256", id="chacha20"
    ),
]
HASH_LENGTH = {"sha256": 32, "sha384": 48}

#: (label, context, length); None for the context means "no context" in OpenSSL's API.
EXPORT_CASES: list[tuple[bytes, bytes | None, int]] = [
    (profile.LABEL_SERVER_HANDSHAKE_CONTEXT, b"", 0),  # 0: the suite's hash length (RFC 9261)
    (profile.LABEL_CLIENT_FINISHED_KEY, None, 0),
    (profile.ATTQUIC_2.binding_exporter_label, bytes(range(32)), 32),
    (profile.ATTQUIC_2_LEGACY_EXPAT_03.binding_exporter_label, bytes(range(32)), 32),
    (b"EXPORTER-attquic-test", b"a longer context value " * 4, 64),
    (b"EXPORTER-attquic-test", b"", 1),
    (b"EXPORTER-attquic-test", b"x", 200),
]


@dataclass
class Handshake:
    capture: ExporterCapture
    endpoint: AioquicTlsEndpoint
    openssl: SSL.Connection
    keylog: list[bytes]


@pytest.fixture(scope="module")
def server_identity() -> SelfSigned:
    return self_signed("localhost")


@pytest.fixture(scope="module")
def client_identity() -> SelfSigned:
    return self_signed("client")


def openssl_connection(
    *,
    is_server: bool,
    identity: SelfSigned | None,
    request_client_certificate: bool,
    keylog: list[bytes],
) -> SSL.Connection:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_options(SSL.OP_NO_TICKET)
    ctx.set_keylog_callback(lambda _conn, line: keylog.append(line))
    if identity is not None:
        ctx.use_certificate(identity.certificate)
        ctx.use_privatekey(identity.key)
    if request_client_certificate:
        ctx.set_verify(SSL.VERIFY_PEER, lambda *_args: True)  # any certificate: not under test
    else:
        ctx.set_verify(SSL.VERIFY_NONE)
    connection = SSL.Connection(ctx, None)
    if is_server:
        connection.set_accept_state()
    else:
        connection.set_tlsext_host_name(b"localhost")
        connection.set_connect_state()
    return connection


def openssl_step(connection: SSL.Connection, incoming: bytes) -> tuple[bytes, bool]:
    """Feed OpenSSL bytes, advance its handshake; returns (bytes to send, handshake done)."""
    if incoming:
        connection.bio_write(incoming)
    try:
        connection.do_handshake()
        done = True
    except SSL.WantReadError:
        done = False
    out = b""
    while True:
        try:
            out += connection.bio_read(65536)
        except SSL.WantReadError:
            return out, done


def handshake(
    *,
    aioquic_is_client: bool,
    suite: tls.CipherSuite,
    server_identity: SelfSigned,
    client_identity: SelfSigned | None,
) -> Handshake:
    context = tls.Context(
        is_client=aioquic_is_client,
        cipher_suites=[suite],
        server_name="localhost" if aioquic_is_client else None,
        cadata=server_identity.pem if aioquic_is_client else None,
        verify_mode=ssl.CERT_REQUIRED if aioquic_is_client else ssl.CERT_NONE,
    )
    context.handshake_extensions = []
    ours = server_identity if not aioquic_is_client else client_identity
    if ours is not None:
        context.certificate = ours.certificate
        context.certificate_private_key = ours.key
    if not aioquic_is_client and client_identity is not None:
        # No public switch in aioquic (see docs/notes): the server asks for a certificate.
        context._request_client_certificate = True

    endpoint = AioquicTlsEndpoint(context)
    capture = ExporterCapture.attach_to_tls(context, is_client=aioquic_is_client)
    keylog: list[bytes] = []
    peer = openssl_connection(
        is_server=aioquic_is_client,
        identity=server_identity if aioquic_is_client else client_identity,
        request_client_certificate=aioquic_is_client and client_identity is not None,
        keylog=keylog,
    )

    to_openssl = endpoint.start()
    to_aioquic, openssl_done = openssl_step(peer, b"")
    for _ in range(8):
        if endpoint.handshake_complete and openssl_done and not to_openssl and not to_aioquic:
            break
        if to_aioquic:
            to_openssl += endpoint.receive(to_aioquic)
        to_aioquic, openssl_done = openssl_step(peer, to_openssl)
        to_openssl = b""
    assert endpoint.handshake_complete, "aioquic did not complete the handshake"
    assert openssl_done, "OpenSSL did not complete the handshake"
    return Handshake(capture=capture, endpoint=endpoint, openssl=peer, keylog=keylog)


def openssl_exporter_secret(run: Handshake) -> bytes:
    (line,) = [line for line in run.keylog if line.startswith(b"EXPORTER_SECRET ")]
    _, client_random, secret = line.split()
    assert bytes.fromhex(client_random.decode()) == run.endpoint.context.client_random
    return bytes.fromhex(secret.decode())


@pytest.mark.parametrize(
    "aioquic_is_client", [True, False], ids=["aioquic-client", "aioquic-server"]
)
@pytest.mark.parametrize("client_auth", [False, True], ids=["server-auth", "mutual-auth"])
@pytest.mark.parametrize(("suite", "openssl_name"), SUITES)
def test_captured_exporter_equals_openssl(
    server_identity: SelfSigned,
    client_identity: SelfSigned,
    suite: tls.CipherSuite,
    openssl_name: str,
    aioquic_is_client: bool,
    client_auth: bool,
) -> None:
    run = handshake(
        aioquic_is_client=aioquic_is_client,
        suite=suite,
        server_identity=server_identity,
        client_identity=client_identity if client_auth else None,
    )
    assert run.openssl.get_cipher_name() == openssl_name
    # The handshake really was the one named: the right certificates went each way.
    if aioquic_is_client:
        openssl_saw = run.openssl.get_peer_certificate(as_cryptography=True)
        assert openssl_saw == (client_identity.certificate if client_auth else None)
    else:
        aioquic_saw = run.endpoint.context._peer_certificate
        assert aioquic_saw == (client_identity.certificate if client_auth else None)
        openssl_saw = run.openssl.get_peer_certificate(as_cryptography=True)
        assert openssl_saw == server_identity.certificate

    assert run.capture.captured
    assert run.capture.cipher_suite == suite
    assert run.capture.exporter.secret == openssl_exporter_secret(run)

    for label, context, length in EXPORT_CASES:
        length = length or HASH_LENGTH[run.capture.hash_name]
        theirs = run.openssl.export_keying_material(label, length, context)
        ours = run.capture.export_keying_material(label, context or b"", length)
        assert ours == theirs, (label, context, length)


def test_post_handshake_derivation_would_disagree_with_openssl(
    server_identity: SelfSigned,
) -> None:
    """The reason for capturing at the first 1-RTT key: afterwards the transcript moved on."""
    run = handshake(
        aioquic_is_client=False,
        suite=tls.CipherSuite.AES_128_GCM_SHA256,
        server_identity=server_identity,
        client_identity=None,
    )
    schedule = run.endpoint.context.key_schedule
    assert schedule is not None
    late = schedule.derive_secret(b"exp master")
    assert late != openssl_exporter_secret(run)
    assert run.capture.exporter.secret == openssl_exporter_secret(run)
