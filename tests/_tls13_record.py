"""A minimal TLS 1.3 record layer (RFC 8446 §5) around aioquic's bare ``tls.Context``.

aioquic's TLS engine produces and consumes handshake messages per epoch and leaves record
protection to QUIC. To run it against a TCP-style TLS 1.3 stack (pyOpenSSL over memory BIOs)
these tests put the messages into TLS records: plaintext records for the INITIAL epoch
(ClientHello, ServerHello), AEAD-protected records with the handshake and application traffic
secrets afterwards. Only what a handshake needs: no alerts sent, no KeyUpdate, no early data.
Test code only; it trusts nothing it does not check, but it is not a TLS implementation.
"""

from __future__ import annotations

from collections.abc import Iterator

from aioquic import tls
from aioquic.buffer import Buffer  # type: ignore[attr-defined]
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from attquic.keyschedule import hash_algorithm, hkdf_expand_label

CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23

LEGACY_VERSION = b"\x03\x03"
MAX_FRAGMENT = 2**14
TAG_LENGTH = 16
IV_LENGTH = 12

# suite -> (hash name, AEAD class, key length)
_SUITES: dict[tls.CipherSuite, tuple[str, type[AESGCM] | type[ChaCha20Poly1305], int]] = {
    tls.CipherSuite.AES_128_GCM_SHA256: ("sha256", AESGCM, 16),
    tls.CipherSuite.AES_256_GCM_SHA384: ("sha384", AESGCM, 32),
    tls.CipherSuite.CHACHA20_POLY1305_SHA256: ("sha256", ChaCha20Poly1305, 32),
}


class RecordError(Exception):
    """The peer's records are not what a TLS 1.3 handshake produces."""


class RecordProtection:
    """AEAD protection of one direction for one traffic secret (RFC 8446 §5.2, §5.3, §7.3)."""

    def __init__(self, suite: tls.CipherSuite, secret: bytes) -> None:
        hash_name, aead, key_length = _SUITES[suite]
        algorithm = hash_algorithm(hash_name)
        self._aead = aead(hkdf_expand_label(algorithm, secret, b"key", b"", key_length))
        self._iv = hkdf_expand_label(algorithm, secret, b"iv", b"", IV_LENGTH)
        self._sequence = 0

    def _nonce(self) -> bytes:
        padded = self._sequence.to_bytes(IV_LENGTH, "big")
        self._sequence += 1
        return bytes(a ^ b for a, b in zip(padded, self._iv, strict=True))

    def seal(self, content_type: int, content: bytes) -> bytes:
        inner = content + bytes([content_type])  # TLSInnerPlaintext, no padding
        header = bytes([APPLICATION_DATA]) + LEGACY_VERSION
        header += (len(inner) + TAG_LENGTH).to_bytes(2, "big")
        return header + self._aead.encrypt(self._nonce(), inner, header)

    def open(self, header: bytes, body: bytes) -> tuple[int, bytes]:
        inner = self._aead.decrypt(self._nonce(), body, header)
        stripped = inner.rstrip(b"\x00")
        if not stripped:
            raise RecordError("protected record without a content type")
        return stripped[-1], stripped[:-1]


def split_records(stream: bytearray) -> Iterator[tuple[bytes, bytes]]:
    """Pop complete (header, body) records off the front of ``stream``."""
    while len(stream) >= 5:
        length = int.from_bytes(stream[3:5], "big")
        if len(stream) < 5 + length:
            return
        header, body = bytes(stream[:5]), bytes(stream[5 : 5 + length])
        del stream[: 5 + length]
        yield header, body


class AioquicTlsEndpoint:
    """aioquic's ``tls.Context`` speaking TLS 1.3 records instead of QUIC CRYPTO frames."""

    def __init__(self, context: tls.Context) -> None:
        self.context = context
        self._buffers = {
            epoch: Buffer(capacity=65536)
            for epoch in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE, tls.Epoch.ONE_RTT)
        }
        self._write: dict[tls.Epoch, RecordProtection] = {}
        self._read: RecordProtection | None = None
        self._incoming = bytearray()
        context.update_traffic_key_cb = self._install_key

    def _install_key(
        self, direction: tls.Direction, epoch: tls.Epoch, suite: tls.CipherSuite, secret: bytes
    ) -> None:
        protection = RecordProtection(suite, secret)
        if direction == tls.Direction.ENCRYPT:
            self._write[epoch] = protection
        else:
            self._read = protection  # records from now on use the newest read key

    @property
    def handshake_complete(self) -> bool:
        return self.context.state in (
            tls.State.CLIENT_POST_HANDSHAKE,
            tls.State.SERVER_POST_HANDSHAKE,
        )

    def start(self) -> bytes:
        """The client's first flight (ClientHello); nothing for a server."""
        self.context.handle_message(b"", self._buffers)
        return self._flush()

    def receive(self, data: bytes) -> bytes:
        """Feed the peer's bytes; returns the records to send back."""
        self._incoming += data
        out = b""
        for header, body in split_records(self._incoming):
            content = self._unprotect(header, body)
            if content:
                # One record at a time: a message may install the key for the next record.
                self.context.handle_message(content, self._buffers)
                out += self._flush()
        return out

    def _unprotect(self, header: bytes, body: bytes) -> bytes:
        record_type = header[0]
        if record_type == CHANGE_CIPHER_SPEC:  # middlebox compatibility (RFC 8446 §D.4)
            if body != b"\x01":
                raise RecordError("malformed change_cipher_spec")
            return b""
        if record_type == HANDSHAKE and self._read is None:
            return body
        if record_type == APPLICATION_DATA and self._read is not None:
            content_type, content = self._read.open(header, body)
            if content_type == HANDSHAKE:
                return content
            if content_type == ALERT:
                raise RecordError(f"peer sent alert {content.hex()}")
            raise RecordError(f"unexpected protected content type {content_type}")
        if record_type == ALERT:
            raise RecordError(f"peer sent plaintext alert {body.hex()}")
        raise RecordError(f"unexpected record type {record_type}")

    def _flush(self) -> bytes:
        out = b""
        for epoch, buffer in self._buffers.items():
            data = buffer.data
            buffer.seek(0)
            for start in range(0, len(data), MAX_FRAGMENT):
                fragment = data[start : start + MAX_FRAGMENT]
                if epoch == tls.Epoch.INITIAL:
                    header = bytes([HANDSHAKE]) + LEGACY_VERSION + len(fragment).to_bytes(2, "big")
                    out += header + fragment
                else:
                    out += self._write[epoch].seal(HANDSHAKE, fragment)
        return out
