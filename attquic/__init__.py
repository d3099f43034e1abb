"""attquic: attested QUIC channels for confidential computing.

Post-handshake attestation on aioquic: RFC 9261 exported authenticators whose leaf certificate
entry carries a RATS CMW with an Intel TDX quote (draft-fossati-seat-expat), bound to the
connection through the TLS exporter.

The public API (docs/api.md has every name with an example)::

    async with attquic.connect(host, port, configuration=tls, attestation=config) as conn:
        print(conn.peer_attestation)            # verified before connect() returned
        stream = await conn.open_stream()       # an anyio ByteStream

    server = await attquic.serve(host, port, configuration=tls, attestation=config,
                                 handler=handle)  # handle(conn) runs only once attested

``attquic.simulated.configuration(attests=True)`` / ``(verifies=True)`` give both ends on the
simulated TDX (not a TEE) in one call. Logging: see :mod:`attquic.logs`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from attquic.api import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    AttestedConnection,
    AttestedServer,
    connect,
    serve,
)
from attquic.attestation import (
    AttestationChange,
    AttestationResult,
    Attester,
    HardwareAttestation,
    IssuerAssertion,
    TrustAnchor,
    Verifier,
)
from attquic.config import AttestationConfiguration
from attquic.errors import (
    AlpnRejected,
    AttquicError,
    CertificateVerificationFailed,
    CloseCode,
    ConnectionClosed,
    HandshakeFailed,
    HandshakeTimeout,
    ListenError,
    LocalError,
    RemoteError,
    StreamClosed,
    StreamError,
    StreamIncomplete,
    StreamReset,
    StreamStopped,
)
from attquic.pkix import AuthenticatorIdentity, TrustStore
from attquic.profile import ATTQUIC_2, ATTQUIC_2_LEGACY_EXPAT_03, WireProfile
from attquic.streams import (
    AttestationAttribute,
    AttestedReceiveStream,
    AttestedSendStream,
    AttestedStream,
)

if TYPE_CHECKING:
    from attquic import simulated as simulated

__version__ = "0.1.0"

__all__ = [
    "ATTQUIC_2",
    "ATTQUIC_2_LEGACY_EXPAT_03",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "AlpnRejected",
    "AttestationAttribute",
    "AttestationChange",
    "AttestationConfiguration",
    "AttestationResult",
    "AttestedConnection",
    "AttestedReceiveStream",
    "AttestedSendStream",
    "AttestedServer",
    "AttestedStream",
    "Attester",
    "AttquicError",
    "AuthenticatorIdentity",
    "CertificateVerificationFailed",
    "CloseCode",
    "ConnectionClosed",
    "HandshakeFailed",
    "HandshakeTimeout",
    "HardwareAttestation",
    "IssuerAssertion",
    "ListenError",
    "LocalError",
    "RemoteError",
    "StreamClosed",
    "StreamError",
    "StreamIncomplete",
    "StreamReset",
    "StreamStopped",
    "TrustAnchor",
    "TrustStore",
    "Verifier",
    "WireProfile",
    "__version__",
    "connect",
    "serve",
    "simulated",
]


def __getattr__(name: str) -> Any:
    """``attquic.simulated`` is imported on first use (it loads the TDX verification stack)."""
    if name == "simulated":
        return importlib.import_module("attquic.simulated")
    raise AttributeError(f"module 'attquic' has no attribute {name!r}")
