"""Configuration of an attested endpoint, validated on construction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from attquic import profile
from attquic.attestation import Attester, Verifier
from attquic.ea.identity import SigningIdentity, generate_self_signed
from attquic.errors import ConfigurationError
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
    """The authenticator's key and certificate. Default (when attesting): a P-256 key and
    self-signed certificate generated here, once per configuration. The key is trusted because
    the evidence commits to its hash, not through a certificate chain."""
    attestation_timeout: float = profile.DEFAULT_ATTESTATION_TIMEOUT
    """Seconds the peer has to complete each attestation exchange (initial and later ones)."""
    early_data_limit: int = profile.DEFAULT_EARLY_DATA_LIMIT
    """Application bytes held per connection before the gate opens; a stream pushing the
    total past it is refused (STOP_SENDING + RESET_STREAM with BUFFER_OVERFLOW)."""
    early_data_budget: int = profile.DEFAULT_EARLY_DATA_BUDGET
    """Server only: application bytes held before attestation across all of the server's
    connections together; past it, early streams are refused as with ``early_data_limit``.
    Bounds what a flood of unattested peers can make the server buffer."""
    max_frame_size: int = profile.DEFAULT_MAX_FRAME_SIZE
    reattest_interval: float | None = None
    """Re-attest the peer this many seconds after each successful attestation (verifier
    side only); None disables periodic re-attestation."""
    cmw_extension: int | None = None
    """Override of the profile's ``cmw_attestation`` codepoint; None keeps the profile's. After
    construction it holds the codepoint in use and :attr:`profile` carries it."""
    attest_after_peer_verified: bool = False
    """Evidence privacy (mutual mode): send our evidence only after the peer's verified."""
    clock: Callable[[], float] = field(default=time.time)
    """Wall-clock source for verification times (Unix seconds). Tests pin it."""
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
        if self.attester is not None and self.identity is None:
            object.__setattr__(self, "identity", generate_self_signed("p256"))

    @property
    def attests(self) -> bool:
        return self.attester is not None

    @property
    def requires_peer_attestation(self) -> bool:
        return self.verifier is not None
