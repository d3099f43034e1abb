"""The attquic error tree and the one table of connection close codes.

Everything attquic raises derives from :class:`AttquicError`. Three branches matter to callers:

* :class:`LocalError`: this side misused the API or is misconfigured. Never sent to the peer.
* :class:`RemoteError`: the peer (or its evidence) failed a check. Each subclass names the
  application error code (:class:`CloseCode`) that closes the QUIC connection, in one place:
  :func:`close_code_for`.
* :class:`HandshakeFailed`: :func:`attquic.connect` got no QUIC/TLS connection at all (no answer,
  ALPN not accepted, certificate verification failed); attestation never started.

Decoders raise subclasses of :class:`DecodeError` (a :class:`RemoteError`) on every malformed
input; they never raise ``IndexError``, ``ValueError`` or anything outside this tree.
"""

from __future__ import annotations

import enum

import anyio

__all__ = [
    "AlpnRejected",
    "AttestationError",
    "AttestationTimeout",
    "AttesterUnavailable",
    "AttquicError",
    "AuthenticatorError",
    "BadFinished",
    "BadSignature",
    "BatchProofError",
    "BindingMismatch",
    "BufferOverflow",
    "CMWError",
    "CannotAuthenticate",
    "CertificateRejected",
    "CertificateVerificationFailed",
    "CloseCode",
    "CollateralError",
    "ConfigurationError",
    "ConnectionClosed",
    "ContextAlreadyUsed",
    "ContextMismatch",
    "ContextReused",
    "DecodeError",
    "EADecodeError",
    "EmptyCertificateList",
    "EvidenceInvalid",
    "ExporterUnavailable",
    "ExtensionNotRequested",
    "FrameError",
    "HandshakeFailed",
    "HandshakeTimeout",
    "ListenError",
    "LocalError",
    "MerkleProofError",
    "MisplacedExtension",
    "NoCommonSignatureScheme",
    "PolicyRejected",
    "ProtocolViolation",
    "QuoteFormatError",
    "RefusedAuthenticator",
    "RemoteError",
    "RequestRateExceeded",
    "SignatureSchemeMismatch",
    "StreamClosed",
    "StreamError",
    "StreamIncomplete",
    "StreamReset",
    "StreamStopped",
    "UnexpectedMessage",
    "UnofferedExtension",
    "UnsupportedSignatureScheme",
    "VerifierUnavailable",
    "close_code_for",
]


class CloseCode(enum.IntEnum):
    """QUIC application error codes used in CONNECTION_CLOSE by attested endpoints.

    The values are part of the "attquic/2" wire profile (see docs/protocol.md).
    """

    NO_ERROR = 0x0
    PROTOCOL_VIOLATION = 0x1A0
    """Malformed or unexpected control frame, RFC 9261 message or CMW; unknown frame type."""
    REFUSED = 0x1A1
    """The peer answered an attestation request with an empty authenticator."""
    BINDING_MISMATCH = 0x1A2
    """The evidence is not bound to this connection and this authenticator key."""
    EVIDENCE_INVALID = 0x1A3
    """Evidence failed cryptographic verification (signatures, chain, collateral, TCB)."""
    POLICY_REJECTED = 0x1A4
    """Evidence verified but the appraisal policy rejected it."""
    VERIFIER_UNAVAILABLE = 0x1A5
    """Verification could not run (collateral or verifier service unreachable)."""
    TIMEOUT = 0x1A6
    """The peer did not complete attestation before the deadline."""
    BUFFER_OVERFLOW = 0x1A7
    """The peer sent more application data before attestation than the bound allows."""
    INTERNAL_ERROR = 0x1A8
    """This side could not produce evidence or hit an internal failure."""
    CERTIFICATE_REJECTED = 0x1A9
    """The authenticator's certificate failed X.509 validation (expat -04 §3.3): not the
    certificate TLS verified, no chain to the trust store, expired, wrong key usage."""
    REQUEST_RATE_EXCEEDED = 0x1AA
    """The peer asked for re-attestation faster than this side's limit allows."""


class AttquicError(Exception):
    """Root of every exception attquic raises."""


class ConnectionClosed(AttquicError):
    """The attested connection is closed. ``code`` is the QUIC application error code
    (a :class:`CloseCode` for attestation failures), ``by_peer`` says which side closed."""

    def __init__(self, code: int, reason: str, *, by_peer: bool) -> None:
        self.code = code
        self.reason = reason
        self.by_peer = by_peer
        try:
            name = CloseCode(code).name
        except ValueError:
            name = f"0x{code:x}"
        side = "peer" if by_peer else "local"
        detail = f" ({reason})" if reason else ""
        super().__init__(f"connection closed by {side}: {name}{detail}")


# --- no connection at all (connect() and serve()) -----------------------------------------


class HandshakeFailed(AttquicError, ConnectionError):
    """The QUIC/TLS handshake did not complete, so attestation never started.

    ``address`` is ``host:port`` of the server; ``code`` the QUIC transport error code (None
    when the server never answered). Also a ``ConnectionError``.
    """

    def __init__(self, message: str, *, address: str, code: int | None = None) -> None:
        super().__init__(message)
        self.address = address
        self.code = code

    def __str__(self) -> str:
        return str(self.args[0])


class HandshakeTimeout(HandshakeFailed, TimeoutError):
    """The handshake did not complete within ``connect(handshake_timeout=...)``; the message
    says whether the server answered at all."""


class AlpnRejected(HandshakeFailed):
    """The two ends share no ALPN protocol (TLS alert no_application_protocol)."""


class CertificateVerificationFailed(HandshakeFailed):
    """A TLS certificate was not accepted; ``reason`` says why (from the TLS alert)."""

    def __init__(self, message: str, *, address: str, code: int | None, reason: str) -> None:
        super().__init__(message, address=address, code=code)
        self.reason = reason


# --- local misuse -------------------------------------------------------------------------


class LocalError(AttquicError):
    """This side misused the API or is misconfigured; nothing the peer did."""


class ConfigurationError(LocalError, ValueError):
    """A configuration object or argument is invalid (raised on construction)."""


class ListenError(LocalError, OSError):
    """:func:`attquic.serve` cannot listen on the address (in use, not local, no permission)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ExporterUnavailable(LocalError):
    """No exporter master secret was captured (handshake not complete or capture failed)."""


class AttesterUnavailable(LocalError):
    """This side cannot produce evidence right now.

    No TEE interface (configfs-tsm absent or not TDX), no permission, or the quote service
    failed, timed out or was busy.
    """


class CannotAuthenticate(LocalError):
    """This side cannot build the exported authenticator it was asked for (RFC 9261 §7.3).

    The usual answer to the peer is the empty authenticator (a refusal).
    """


class NoCommonSignatureScheme(CannotAuthenticate):
    """The request offers no signature scheme that fits this side's key."""


class ContextAlreadyUsed(CannotAuthenticate):
    """The request's certificate_request_context was already used on this connection."""


class ExtensionNotRequested(CannotAuthenticate):
    """A certificate extension to send was not offered in the request."""


# --- remote misbehaviour ------------------------------------------------------------------


class RemoteError(AttquicError):
    """The peer, or what it sent, failed a check. ``close_code`` closes the connection."""

    close_code: CloseCode = CloseCode.PROTOCOL_VIOLATION


class DecodeError(RemoteError):
    """Malformed bytes: bad lengths, trailing bytes, unknown values."""


class ProtocolViolation(RemoteError):
    """The peer broke the attquic control-stream protocol."""


class FrameError(DecodeError):
    """A control-stream frame is malformed, unknown or too large."""


class EADecodeError(DecodeError):
    """An RFC 9261 request or authenticator (or a TLS structure inside) is malformed."""


class CMWError(DecodeError):
    """A RATS Conceptual Message Wrapper is malformed or invalid."""


class QuoteFormatError(DecodeError):
    """A TDX quote is truncated or internally inconsistent."""

    close_code = CloseCode.EVIDENCE_INVALID


# RFC 9261 receiver checklist (section 5.2.x); one class per step.


class AuthenticatorError(RemoteError):
    """An exported authenticator failed validation."""


class UnexpectedMessage(AuthenticatorError):
    """The authenticator is not exactly Certificate, CertificateVerify, Finished (or Finished)."""


class ContextMismatch(AuthenticatorError):
    """The certificate_request_context matches no outstanding request."""


class ContextReused(AuthenticatorError):
    """The certificate_request_context was already used on this connection."""


class EmptyCertificateList(AuthenticatorError):
    """A Certificate with no entries is followed by CertificateVerify (only a lone Finished may
    stand for "no certificate")."""


class UnofferedExtension(AuthenticatorError):
    """A Certificate carries an extension the request did not offer (unsupported_extension)."""


class MisplacedExtension(AuthenticatorError):
    """An extension appears where it may not (e.g. cmw_attestation on a non-leaf entry)."""


class UnsupportedSignatureScheme(AuthenticatorError):
    """The signature scheme is not valid for TLS 1.3 or was not offered."""


class SignatureSchemeMismatch(AuthenticatorError):
    """The signature scheme does not match the leaf certificate's key."""


class BadSignature(AuthenticatorError):
    """The CertificateVerify signature does not verify."""


class BadFinished(AuthenticatorError):
    """The Finished MAC does not match."""


_REFUSAL_MESSAGE = (
    "the peer did not attest: it could not obtain evidence or an attestation result, or does "
    "not attest (it answered the request with an empty authenticator)"
)


class RefusedAuthenticator(AuthenticatorError):
    """The peer sent the empty authenticator: it refuses to authenticate.

    ``context`` is the refused request's certificate_request_context (None when the refusal
    was inferred otherwise, e.g. from the peer's SETUP).
    """

    close_code = CloseCode.REFUSED

    def __init__(self, message: str = "", *, context: bytes | None = None) -> None:
        self.context = context
        super().__init__(message or _REFUSAL_MESSAGE)


class CertificateRejected(AuthenticatorError):
    """The authenticator's certificate is not accepted by X.509 validation (RFC 9261 §5.2.4 step
    "validate the chain", expat -04 §3.3); see :mod:`attquic.pkix`."""

    close_code = CloseCode.CERTIFICATE_REJECTED


# Attestation (evidence and results).


class AttestationError(RemoteError):
    """Evidence or an attestation result was not accepted."""

    close_code = CloseCode.EVIDENCE_INVALID


class EvidenceInvalid(AttestationError):
    """Evidence failed cryptographic verification (signature, chain, collateral, TCB)."""


class BindingMismatch(AttestationError):
    """Evidence is not bound to this connection (REPORTDATA or eat_nonce mismatch)."""

    close_code = CloseCode.BINDING_MISMATCH


class BatchProofError(BindingMismatch):
    """Batched evidence whose inclusion proof is malformed (bad CBOR, wrong shape or types)."""


class MerkleProofError(BindingMismatch):
    """An inclusion proof that does not lead to the root the evidence commits to (index out of
    range, path of the wrong length for the tree size, tampered element, other leaf)."""


class PolicyRejected(AttestationError):
    """The appraisal policy rejected verified evidence; ``reasons`` lists every mismatch."""

    close_code = CloseCode.POLICY_REJECTED

    def __init__(self, reasons: list[str] | tuple[str, ...]) -> None:
        self.reasons: tuple[str, ...] = tuple(reasons)
        super().__init__("; ".join(self.reasons) or "rejected by policy")


class VerifierUnavailable(AttestationError):
    """Verification could not run: collateral or the verifier service was unreachable."""

    close_code = CloseCode.VERIFIER_UNAVAILABLE


class CollateralError(VerifierUnavailable):
    """DCAP collateral could not be fetched, parsed or cached."""


# Channel-level failures.


class AttestationTimeout(RemoteError):
    """The peer did not complete attestation before the deadline."""

    close_code = CloseCode.TIMEOUT


class BufferOverflow(RemoteError):
    """The peer sent more early application data than the pre-attestation bound allows."""

    close_code = CloseCode.BUFFER_OVERFLOW


class RequestRateExceeded(ProtocolViolation):
    """The peer's re-attestation requests exceeded the configured rate limit (each costs a
    quote)."""

    close_code = CloseCode.REQUEST_RATE_EXCEEDED


# Application streams. Each also derives from the anyio exception that the
# :class:`anyio.abc.ByteStream` contract names, so generic anyio code keeps working.


class StreamError(AttquicError):
    """An application stream cannot be used as asked. ``code`` is the peer's QUIC application
    error code when the peer caused it, else None."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        Exception.__init__(self, message)  # not super(): anyio.IncompleteRead takes no message


class StreamReset(StreamError, anyio.BrokenResourceError):
    """The peer abandoned its sending side (RESET_STREAM): no more bytes will arrive."""


class StreamStopped(StreamError, anyio.BrokenResourceError):
    """The peer asked us to stop sending (STOP_SENDING): our sending side was reset."""


class StreamClosed(StreamError, anyio.ClosedResourceError):
    """This side already closed the stream, or its sending side (after ``send_eof``)."""


class StreamIncomplete(StreamError, anyio.IncompleteRead):
    """The peer ended the stream before the number of bytes asked for arrived."""


def close_code_for(error: BaseException) -> CloseCode:
    """The application error code that closes a connection after ``error``.

    Remote errors carry their own code; anything else is a local failure.
    """
    if isinstance(error, RemoteError):
        return error.close_code
    return CloseCode.INTERNAL_ERROR
