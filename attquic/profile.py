"""Wire profile "attquic/1": every constant the specifications leave open, in one place.

A later draft or a compatibility profile changes this module only. See docs/protocol.md for the
reasoning behind each value.
"""

from __future__ import annotations

from typing import Final

#: Profile version carried in SETUP frames.
PROFILE_VERSION: Final = 1
PROFILE_NAME: Final = "attquic/1"

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

# --- binding (draft-fossati-seat-expat -02/-03) ----------------------------------------------

#: exported = TLS-Exporter(BINDING_EXPORTER_LABEL, certificate_request_context, 32)
BINDING_EXPORTER_LABEL: Final = b"Attestation"
BINDING_EXPORTER_LENGTH: Final = 32
#: REPORTDATA layout version: SHA-512(binding ‖ aik_pub_hash).
REPORT_DATA_LAYOUT: Final = 1

# --- CMW payloads ----------------------------------------------------------------------------

#: Media type of a raw Intel TDX quote (same string as the draft authors' reference code).
TDX_QUOTE_MEDIA_TYPE: Final = (
    'application/tdx-quote; version=1.0; profile="https://trustedcomputinggroup.org/tdx/v1"'
)
#: Passport model: an EAR JWT.
EAR_JWT_MEDIA_TYPE: Final = 'application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"'

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
