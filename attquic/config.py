"""Configuration of an attested endpoint, validated on construction."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aioquic.quic.configuration import QuicConfiguration

from attquic import limits, profile
from attquic.attestation import AttestationChange, Attester, Verifier
from attquic.ea.identity import SigningIdentity, generate_self_signed
from attquic.ea.schemes import PrivateKey
from attquic.errors import ConfigurationError
from attquic.pkix import TrustStore, warn_evidence_only_identity
from attquic.profile import ATTQUIC_2, WireProfile

__all__ = ["AttestationConfiguration"]


@dataclass(frozen=True)
class AttestationConfiguration:
    """What this endpoint proves and what it demands of its peer.

    * ``attester`` set: this side answers the peer's attestation requests with evidence.
    * ``verifier`` set: this side requires the peer's attestation before its gate opens.

    The default deployment has an attester on the server and a verifier on the client;
    mutual attestation sets both on both sides. At least one must be set: an endpoint with
    neither is plain QUIC, not an attested channel.
    """

    attester: Attester | None = None
    verifier: Verifier | None = None
    identity: SigningIdentity | None = None
    """The authenticator's key and certificate chain (attester side). Default: this endpoint's
    TLS certificate and key (identity (a) of :mod:`attquic.pkix`), taken from the
    ``QuicConfiguration`` by :func:`attquic.serve` / :func:`attquic.connect`. An endpoint
    without one (a client, usually) gets an ephemeral self-signed key, generated once per
    configuration, which a relying party accepts only if it opted in to identity (c). Give a
    client a certificate from a CA the server trusts (identity (b)) instead."""
    trust_store: TrustStore | None = None
    """Relying party: roots that may issue the peer's authenticator certificate when it is not
    the certificate TLS verified in the handshake (identity (b)); validated by
    ``cryptography``'s X.509 verification at :attr:`clock` time."""
    accept_evidence_only_identity: bool = False
    """Relying party: also accept an authenticator certificate that no X.509 validation
    vouches for, trusted only because the evidence commits to its key (identity (c)). A
    **deviation from draft-fossati-seat-expat -04 §3.3**; warns once per process."""
    attestation_timeout: float = profile.DEFAULT_ATTESTATION_TIMEOUT
    """Seconds the peer has to complete each attestation exchange (initial and later ones)."""
    early_data_limit: int = profile.DEFAULT_EARLY_DATA_LIMIT
    """Application bytes held per connection before the gate opens; a stream pushing the
    total past it is refused (STOP_SENDING + RESET_STREAM with BUFFER_OVERFLOW). Each held
    stream also costs ``attquic.early_data.STREAM_CHARGE`` (1 KiB) of it."""
    early_data_budget: int = profile.DEFAULT_EARLY_DATA_BUDGET
    """Server only: application bytes held before attestation across all of the server's
    connections together; past it, early streams are refused as with ``early_data_limit``.
    Bounds what a flood of unattested peers can make the server buffer (held streams are
    charged as for ``early_data_limit``)."""
    max_frame_size: int = profile.DEFAULT_MAX_FRAME_SIZE
    reattest_interval: float | None = None
    """Re-attest the peer this many seconds after each successful attestation (verifier
    side only); None disables periodic re-attestation."""
    cmw_extension: int | None = None
    """Override of the profile's ``cmw_attestation`` codepoint; None keeps the profile's. After
    construction it holds the codepoint in use and :attr:`profile` carries it."""
    attest_after_peer_verified: bool = False
    """Evidence privacy (mutual mode): send our evidence only after the peer's verified."""
    accept_batched_evidence: bool = True
    """As relying party, accept batched evidence (one quote covering a Merkle tree of many
    connections' bindings plus this connection's inclusion proof; docs/protocol.md): SETUP
    announces it with bit 2. Off: the peer sends one quote per request."""
    peer_reattest_burst: int = limits.DEFAULT_REATTEST_BURST
    """Attester side: re-attestation requests the peer may make back to back after its
    initial one. Each costs a quote; beyond the limit the connection is closed with
    REQUEST_RATE_EXCEEDED."""
    peer_reattest_interval: float = limits.DEFAULT_REATTEST_INTERVAL
    """Attester side: seconds per further re-attestation request the peer earns back
    (default: 4 back to back, then one per 10 s)."""
    clock: Callable[[], float] = field(default=time.time)
    """Wall-clock source for verification times (Unix seconds). Tests pin it."""
    allow_attestation_change: bool | Callable[[AttestationChange], bool] = False
    """Relying party: may a re-attestation present another authenticator key or other
    measurements (TDX: MRTD, RTMRs, MRCONFIGID, MROWNER, MROWNERCONFIG, MRSEAM, attributes,
    XFAM; EAR: issuer, submodule, policy ids) than the connection's first attestation? False
    (default) closes the connection with POLICY_REJECTED; True allows any change; a callback
    receives the :class:`~attquic.attestation.AttestationChange` and decides."""
    # last: inside the class body the name shadows the attquic.profile module
    profile: WireProfile = ATTQUIC_2
    """The wire profile (binder label, codepoint, media types, SETUP version); both peers must
    use the same one. :data:`~attquic.profile.ATTQUIC_2_LEGACY_EXPAT_03` talks to peers still on
    draft-fossati-seat-expat -03."""

    def __post_init__(self) -> None:
        if self.attester is None and self.verifier is None:
            raise ConfigurationError("an attested endpoint needs an attester, a verifier or both")
        if self.attester is not None and not isinstance(self.attester, Attester):
            raise ConfigurationError("attester must implement attquic.attestation.Attester")
        if self.verifier is not None and not isinstance(self.verifier, Verifier):
            raise ConfigurationError("verifier must implement attquic.attestation.Verifier")
        if self.attestation_timeout <= 0:
            raise ConfigurationError("attestation_timeout must be positive")
        if self.early_data_limit < 0:
            raise ConfigurationError("early_data_limit must not be negative")
        if self.early_data_budget < 0:
            raise ConfigurationError("early_data_budget must not be negative")
        if self.peer_reattest_burst < 0:
            raise ConfigurationError("peer_reattest_burst must not be negative")
        if self.peer_reattest_interval <= 0:
            raise ConfigurationError("peer_reattest_interval must be positive")
        if self.max_frame_size < 1024:
            raise ConfigurationError("max_frame_size must be at least 1024 bytes")
        if self.reattest_interval is not None:
            if self.verifier is None:
                raise ConfigurationError("reattest_interval needs a verifier")
            if self.reattest_interval <= 0:
                raise ConfigurationError("reattest_interval must be positive")
        if not isinstance(self.profile, WireProfile):
            raise ConfigurationError("profile must be an attquic.profile.WireProfile")
        if self.cmw_extension is not None:
            if not 0 <= self.cmw_extension <= 0xFFFF:
                raise ConfigurationError("cmw_extension must be a 16-bit codepoint")
            if self.cmw_extension != self.profile.cmw_extension:
                object.__setattr__(
                    self, "profile", self.profile.with_cmw_extension(self.cmw_extension)
                )
        object.__setattr__(self, "cmw_extension", self.profile.cmw_extension)
        if self.attest_after_peer_verified and (self.attester is None or self.verifier is None):
            raise ConfigurationError("attest_after_peer_verified needs mutual attestation")
        if self.identity is not None and not isinstance(self.identity, SigningIdentity):
            raise ConfigurationError("identity must be an attquic.ea.identity.SigningIdentity")
        if self.trust_store is not None and not isinstance(self.trust_store, TrustStore):
            raise ConfigurationError("trust_store must be an attquic.pkix.TrustStore")
        if (self.trust_store is not None or self.accept_evidence_only_identity) and (
            self.verifier is None
        ):
            raise ConfigurationError(
                "trust_store and accept_evidence_only_identity concern the peer's "
                "authenticator: they need a verifier"
            )
        if self.accept_evidence_only_identity:
            warn_evidence_only_identity()
        if not isinstance(self.allow_attestation_change, bool) and not callable(
            self.allow_attestation_change
        ):
            raise ConfigurationError("allow_attestation_change must be a bool or a callable")

    def for_endpoint(self, quic: QuicConfiguration) -> AttestationConfiguration:
        """This configuration with its authenticator identity resolved for ``quic``.

        An attesting side without :attr:`identity` uses the TLS certificate and key of ``quic``
        if it has them, else :attr:`ephemeral_identity`. Returns ``self`` when nothing changes.
        """
        if self.attester is None or self.identity is not None:
            return self
        certificate, key = quic.certificate, quic.private_key
        if certificate is not None and key is not None:
            if not isinstance(key, PrivateKey):
                raise ConfigurationError(
                    f"the TLS private key ({type(key).__name__}) cannot sign an authenticator; "
                    "set AttestationConfiguration.identity"
                )
            identity = SigningIdentity(key, (certificate, *quic.certificate_chain))
        else:
            identity = self.ephemeral_identity
        return dataclasses.replace(self, identity=identity)

    @functools.cached_property
    def ephemeral_identity(self) -> SigningIdentity:
        """A self-signed P-256 identity generated once per configuration (identity (c))."""
        return generate_self_signed("p256")

    @property
    def attests(self) -> bool:
        return self.attester is not None

    @property
    def requires_peer_attestation(self) -> bool:
        return self.verifier is not None
