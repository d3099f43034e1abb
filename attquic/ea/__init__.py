"""RFC 9261 Exported Authenticators, I/O-free: message codecs, signature schemes, identities and
the per-connection request / authenticate / refuse / validate API."""

from attquic.ea.authenticator import ExportedAuthenticators, ValidatedAuthenticator
from attquic.ea.identity import SigningIdentity, from_pem, generate_self_signed
from attquic.ea.messages import (
    Authenticator,
    AuthenticatorRequest,
    CertificateEntry,
    CertificateMessage,
    CertificateVerifyMessage,
    Extension,
    FinishedMessage,
    Role,
)
from attquic.ea.schemes import DEFAULT_SIGNATURE_SCHEMES

__all__ = [
    "DEFAULT_SIGNATURE_SCHEMES",
    "Authenticator",
    "AuthenticatorRequest",
    "CertificateEntry",
    "CertificateMessage",
    "CertificateVerifyMessage",
    "ExportedAuthenticators",
    "Extension",
    "FinishedMessage",
    "Role",
    "SigningIdentity",
    "ValidatedAuthenticator",
    "from_pem",
    "generate_self_signed",
]
