"""attquic: attested QUIC channels for confidential computing.

Post-handshake attestation on aioquic: RFC 9261 exported authenticators whose leaf certificate
entry carries a RATS CMW with an Intel TDX quote (draft-fossati-seat-expat), bound to the
connection through the TLS exporter.

The public API::

    async with attquic.connect(host, port, configuration=tls, attestation=config) as conn:
        print(conn.peer_attestation)            # verified before connect() returned
        stream = await conn.open_stream()       # an anyio ByteStream

    server = await attquic.serve(host, port, configuration=tls, attestation=config,
                                 handler=handle)  # handle(conn) runs only once attested
"""

from attquic.api import AttestedConnection, AttestedServer, connect, serve
from attquic.attestation import (
    AttestationChange,
    AttestationResult,
    Attester,
    HardwareAttestation,
    IssuerAssertion,
    Verifier,
)
from attquic.config import AttestationConfiguration
from attquic.errors import (
    AttquicError,
    CloseCode,
    ConnectionClosed,
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

__version__ = "0.1.0"

__all__ = [
    "ATTQUIC_2",
    "ATTQUIC_2_LEGACY_EXPAT_03",
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
    "CloseCode",
    "ConnectionClosed",
    "HardwareAttestation",
    "IssuerAssertion",
    "LocalError",
    "RemoteError",
    "StreamClosed",
    "StreamError",
    "StreamIncomplete",
    "StreamReset",
    "StreamStopped",
    "TrustStore",
    "Verifier",
    "WireProfile",
    "__version__",
    "connect",
    "serve",
]
