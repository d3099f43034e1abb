"""The wire profile: every constant the specifications leave open, in one place.

:class:`WireProfile` gathers what two attquic endpoints must agree on byte for byte (the binder's
exporter label, the REPORTDATA layout, the ``cmw_attestation`` codepoint, the CMW media types,
the EAR profile and the SETUP version); an endpoint picks one per configuration
(``AttestationConfiguration(profile=...)``). :data:`ATTQUIC_2` is the default;
:data:`ATTQUIC_2_LEGACY_EXPAT_03` keeps the binder label of draft-fossati-seat-expat -03 for peers
still on it. Constants that no profile changes (RFC 9261 labels, handshake and frame types,
resource bounds) stay module-level below. docs/protocol.md gives the reasoning behind each value.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Final

from attquic.errors import ConfigurationError

# --- RFC 9261 ----------------------------------------------------------------------------------

#: Handshake message types (RFC 8446 §4, RFC 9261 §4).
HS_CERTIFICATE: Final = 11
HS_CERTIFICATE_REQUEST: Final = 13
HS_CERTIFICATE_VERIFY: Final = 15
HS_CLIENT_CERTIFICATE_REQUEST: Final = 17
HS_FINISHED: Final = 20

#: TLS extension codepoints used in requests.
EXT_SERVER_NAME: Final = 0x0000
EXT_SIGNATURE_ALGORITHMS: Final = 0x000D
EXT_CERTIFICATE_AUTHORITIES: Final = 0x002F
EXT_OID_FILTERS: Final = 0x0030
EXT_SIGNATURE_ALGORITHMS_CERT: Final = 0x0032

#: cmw_attestation (draft-fossati-seat-expat). No IANA value yet; 0xFFFF is what the draft
#: authors' reference implementation uses. Endpoints may configure another value.
CMW_ATTESTATION_EXTENSION: Final = 0xFFFF

#: RFC 9261 §5.1 exporter labels; "client"/"server" is the role of the authenticator's sender.
LABEL_CLIENT_HANDSHAKE_CONTEXT: Final = b"EXPORTER-client authenticator handshake context"
LABEL_SERVER_HANDSHAKE_CONTEXT: Final = b"EXPORTER-server authenticator handshake context"
LABEL_CLIENT_FINISHED_KEY: Final = b"EXPORTER-client authenticator finished key"
LABEL_SERVER_FINISHED_KEY: Final = b"EXPORTER-server authenticator finished key"

#: Length of the certificate_request_context attquic generates for each request.
REQUEST_CONTEXT_LENGTH: Final = 32

# --- binding (draft-fossati-seat-expat -04 §5.1, §9.2) ----------------------------------------

#: exported = TLS-Exporter(label, certificate_request_context, 32): the -04 label (attquic/2)...
BINDING_EXPORTER_LABEL: Final = b"EXPORTER-cmw-attestation"
#: ... and the -02/-03 one, used only by the legacy profile.
EXPAT_03_BINDING_EXPORTER_LABEL: Final = b"Attestation"
BINDING_EXPORTER_LENGTH: Final = 32

# --- CMW payloads ----------------------------------------------------------------------------

#: Media type of a raw Intel TDX quote (same string as the draft authors' reference code).
TDX_QUOTE_MEDIA_TYPE: Final = (
    'application/tdx-quote; version=1.0; profile="https://trustedcomputinggroup.org/tdx/v1"'
)
#: EAR profiles (``eat_profile``): draft-ietf-rats-ear -03, and Veraison's earlier one.
EAR_03_PROFILE: Final = "tag:ietf.org,2026:rats/ear#03"
VERAISON_EAR_PROFILE: Final = "tag:github.com,2023:veraison/ear"
#: The passport result attquic/2 sends: an EAR -03 JWT.
EAR_03_JWT_MEDIA_TYPE: Final = f'application/eat+jwt; eat_profile="{EAR_03_PROFILE}"'
#: Passport model: an EAR JWT (-03; attquic.ear also reads Veraison's profile).
EAR_JWT_MEDIA_TYPE: Final = EAR_03_JWT_MEDIA_TYPE
#: Batched evidence: the ``"batch-proof"`` record, CBOR ``[tree_size, leaf_index, [path...]]``.
BATCH_PROOF_MEDIA_TYPE: Final = "application/vnd.attquic.merkle-proof+cbor"
#: Requests one batched quote covers at most, by default.
DEFAULT_MAX_BATCH_SIZE: Final = 64

#: CMW ``ind`` bits.
IND_REFERENCE_VALUES: Final = 1
IND_ENDORSEMENTS: Final = 2
IND_EVIDENCE: Final = 4
IND_ATTESTATION_RESULTS: Final = 8
IND_APPRAISAL_POLICY: Final = 16

# --- control stream --------------------------------------------------------------------------

#: The client opens bidirectional stream 0 as the control stream, whatever the roles.
CONTROL_STREAM_ID: Final = 0

FRAME_SETUP: Final = 0x01
FRAME_AUTHENTICATOR_REQUEST: Final = 0x02
FRAME_AUTHENTICATOR: Final = 0x03
FRAME_RESULT: Final = 0x04

#: Largest control frame payload accepted by default.
DEFAULT_MAX_FRAME_SIZE: Final = 256 * 1024
#: Application bytes held per connection before the gate opens.
DEFAULT_EARLY_DATA_LIMIT: Final = 256 * 1024
#: Application bytes held before attestation across all connections of one server.
DEFAULT_EARLY_DATA_BUDGET: Final = 8 * 1024 * 1024
#: Requests from the peer we hold unanswered or unconfirmed at once; more is a protocol
#: violation (each request costs us a quote, so a peer must not be able to queue many).
MAX_PEER_REQUESTS_IN_FLIGHT: Final = 2
#: Seconds the peer has to complete an attestation exchange.
DEFAULT_ATTESTATION_TIMEOUT: Final = 10.0


# --- the profile object ------------------------------------------------------------------------


class ReportDataLayout(enum.IntEnum):
    """How 64-byte TDX REPORTDATA commits to the binding and the authenticator key."""

    SHA512_NONCE_AIK = 1
    """``SHA-512(nonce ‖ aik_pub_hash)``: nonce = the binding (or a batch's Merkle root)."""


@dataclass(frozen=True, kw_only=True)
class WireProfile:
    """Everything two attquic endpoints must agree on byte for byte.

    Both peers must use the same profile: SETUP carries ``setup_version`` and a peer announcing
    another version is closed with PROTOCOL_VIOLATION. Derive a variant with
    :func:`dataclasses.replace` or :meth:`with_cmw_extension`.

    The session applies ``setup_version``, the binder label and length, and ``cmw_extension``.
    The media types and EAR profiles describe what evidence and results look like under this
    profile; attquic's attesters and verifiers (simulated and configfs TDX, ``TdxVerifier``,
    the verifier service, ``EarChannelVerifier``) produce and accept exactly those of
    :data:`ATTQUIC_2` (tests keep them equal), and a profile that changes them needs attesters
    and verifiers built to match.
    """

    name: str
    """Human-readable name, used in close reasons and logs."""
    setup_version: int
    """The version carried in SETUP; it tells the profiles apart on the wire."""
    binding_exporter_label: bytes
    """``exported = TLS-Exporter(label, certificate_request_context, 32)`` (the binder)."""
    binding_exporter_length: int = BINDING_EXPORTER_LENGTH
    report_data_layout: ReportDataLayout = ReportDataLayout.SHA512_NONCE_AIK
    cmw_extension: int = CMW_ATTESTATION_EXTENSION
    """The ``cmw_attestation`` codepoint (no IANA value yet)."""
    tdx_quote_media_type: str = TDX_QUOTE_MEDIA_TYPE
    """CMW record type of TDX evidence (unregistered; the draft authors' string)."""
    passport_media_type: str = EAR_03_JWT_MEDIA_TYPE
    """CMW record type of the passport result this side's verifier service issues."""
    ear_profile: str = EAR_03_PROFILE
    """The EAR profile issued in the passport model."""
    accepted_ear_profiles: frozenset[str] = frozenset({EAR_03_PROFILE, VERAISON_EAR_PROFILE})
    """EAR profiles a relying party accepts on receipt."""
    expat_draft: str = "draft-fossati-seat-expat-04"
    """The draft revision whose binder this profile follows."""

    def __post_init__(self) -> None:
        if not 0 <= self.setup_version < 2**62:
            raise ConfigurationError("setup_version must be a QUIC varint")
        if not self.binding_exporter_label:
            raise ConfigurationError("binding_exporter_label must not be empty")
        if not 0 < self.binding_exporter_length <= 255:
            raise ConfigurationError("binding_exporter_length must be 1..255")
        if not 0 <= self.cmw_extension <= 0xFFFF:
            raise ConfigurationError("cmw_extension must be a 16-bit codepoint")
        if not isinstance(self.report_data_layout, ReportDataLayout):
            raise ConfigurationError("report_data_layout must be a ReportDataLayout")
        if self.ear_profile not in self.accepted_ear_profiles:
            raise ConfigurationError("the issued ear_profile must also be accepted")

    def with_cmw_extension(self, codepoint: int) -> WireProfile:
        """This profile with another ``cmw_attestation`` codepoint."""
        return dataclasses.replace(self, cmw_extension=codepoint)


#: SETUP version of attquic/2.
ATTQUIC_2_SETUP_VERSION: Final = 2
#: SETUP version of the legacy profile: 0x203, "attquic/2 with the expat -03 binder". A number
#: of its own, so that an attquic/2 endpoint refuses a legacy peer at SETUP (PROTOCOL_VIOLATION)
#: instead of failing later with a binding mismatch.
LEGACY_EXPAT_03_SETUP_VERSION: Final = 0x203

#: The default wire profile (draft-fossati-seat-expat -04).
ATTQUIC_2: Final = WireProfile(
    name="attquic/2",
    setup_version=ATTQUIC_2_SETUP_VERSION,
    binding_exporter_label=BINDING_EXPORTER_LABEL,
)

#: attquic/2 with the -03 binder label "Attestation", for peers still on expat -03 (the Go cocos
#: EA core, for one). Never the default; both ends must select it.
ATTQUIC_2_LEGACY_EXPAT_03: Final = WireProfile(
    name="attquic/2-legacy-expat-03",
    setup_version=LEGACY_EXPAT_03_SETUP_VERSION,
    binding_exporter_label=EXPAT_03_BINDING_EXPORTER_LABEL,
    expat_draft="draft-fossati-seat-expat-03",
)

#: Every profile attquic knows, by SETUP version (for close reasons).
KNOWN_PROFILES: Final = {p.setup_version: p for p in (ATTQUIC_2, ATTQUIC_2_LEGACY_EXPAT_03)}

#: Profile version carried in SETUP frames by the default profile (kept for existing callers).
PROFILE_VERSION: Final = ATTQUIC_2_SETUP_VERSION
PROFILE_NAME: Final = ATTQUIC_2.name


def describe_setup_version(version: int) -> str:
    """``version`` with the name of the profile it belongs to, if attquic knows it."""
    known = KNOWN_PROFILES.get(version)
    return f"{version} ({known.name})" if known is not None else f"{version} (unknown profile)"
