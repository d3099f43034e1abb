"""attquic: attested QUIC channels for confidential computing.

Post-handshake attestation on aioquic: RFC 9261 exported authenticators whose leaf certificate
entry carries a RATS CMW with an Intel TDX quote (draft-fossati-seat-expat), bound to the
connection through the TLS exporter.
"""

from attquic.errors import AttquicError, CloseCode, LocalError, RemoteError

__version__ = "0.1.0"

__all__ = ["AttquicError", "CloseCode", "LocalError", "RemoteError", "__version__"]
