"""Property tests: decoders raise only project errors, and no sequence of frames or timings
opens the gate without a verified attestation.

These complement the per-module properties (tests/test_ea_messages.py, test_cmw_properties.py,
test_tdx_quote.py, test_session.py) with what those do not cover: chunking of the control
stream, the cmw_attestation wrapper, EAR claims and tokens, lazily parsed quote parts, and a
session driven by a man in the middle that drops, duplicates, reorders, reflects and injects
frames at random times. The atheris harnesses under fuzz/ run the same decoders for longer.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from data_paths import TDX_SAMPLES
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attquic import expat, frames, profile
from attquic.attestation import HardwareAttestation, TrustAnchor
from attquic.cmw import CMW, CMWRecord, encode_cbor
from attquic.ea.authenticator import ExportedAuthenticators
from attquic.ea.identity import generate_self_signed
from attquic.ea.messages import (
    AuthenticatorRequest,
    CertificateEntry,
    CertificateMessage,
    Extension,
    Role,
)
from attquic.ear.claims import decode_claims, parse_claims_json
from attquic.ear.keys import generate_signing_key, public_jwk
from attquic.ear.token import EarVerifier
from attquic.errors import (
    AttquicError,
    AuthenticatorError,
    BindingMismatch,
    ContextAlreadyUsed,
    EvidenceInvalid,
    FrameError,
    MisplacedExtension,
    QuoteFormatError,
    UnofferedExtension,
)
from attquic.events import (
    CloseConnection,
    EvidenceNeeded,
    GateOpened,
    SendControlData,
    VerificationNeeded,
)
from attquic.keyschedule import Binding, ExporterSecret
from attquic.session import AttestationSession, SessionConfiguration
from attquic.tdx.quote import parse_quote
from attquic.tdx.simulated import SimulatedTdxHierarchy, SimulatedTdxWarning

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IDENTITY = generate_self_signed("p256", common_name="property attester")

# --- control frames -------------------------------------------------------------------------------

_FRAMES = st.one_of(
    st.builds(
        lambda v, r, a: frames.SetupFrame(v, r, a),
        st.integers(0, 2**62 - 1),
        st.booleans(),
        st.booleans(),
    ),
    st.builds(frames.AuthenticatorRequestFrame, st.binary(min_size=1, max_size=80)),
    st.builds(frames.AuthenticatorFrame, st.binary(min_size=1, max_size=80)),
    st.builds(frames.ResultFrame, st.binary(max_size=255)),
)


def _feed_in_chunks(data: bytes, cuts: list[int], bound: int) -> list[frames.Frame]:
    decoder = frames.FrameDecoder(bound)
    decoded: list[frames.Frame] = []
    start = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        decoded += decoder.feed(data[start:cut]) if cut >= start else []
        start = max(start, cut)
        assert decoder.buffered <= bound + 16
    return decoded


@SETTINGS
@given(st.lists(_FRAMES, max_size=6), st.lists(st.integers(0, 10_000), max_size=8))
def test_frame_decoding_does_not_depend_on_chunking(
    sent: list[frames.Frame], cuts: list[int]
) -> None:
    data = b"".join(frames.encode_frame(frame) for frame in sent)
    assert _feed_in_chunks(data, cuts, 1 << 16) == sent


@SETTINGS
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6), st.integers(1, 64))
@example(b"\x03\xc0\x00\x00\x00\x40\x00\x00\x00", [], 64)  # 2^30-byte header
@example(b"\x01\x02\x01\x04", [], 64)  # unknown SETUP flag
@example(b"\x04\x02\x02\x00", [], 64)  # unknown RESULT verdict
def test_arbitrary_control_bytes_raise_only_frame_errors(
    data: bytes, cuts: list[int], bound: int
) -> None:
    with contextlib.suppress(FrameError):
        _feed_in_chunks(data, cuts, bound)


def test_oversized_frame_is_rejected_before_its_payload() -> None:
    decoder = frames.FrameDecoder(1024)
    with pytest.raises(FrameError, match="bound"):
        decoder.feed(b"\x03\x44\x01")  # 1025 bytes announced, none sent
    assert decoder.buffered <= 3


# --- cmw_attestation ------------------------------------------------------------------------------

_CMW = CMWRecord(profile.TDX_QUOTE_MEDIA_TYPE, b"\x04\x00" + bytes(62), profile.IND_EVIDENCE)


def _certificate(extension_data: bytes, position: int, entries: int) -> CertificateMessage:
    carrier = (Extension(profile.CMW_ATTESTATION_EXTENSION, extension_data),)
    return CertificateMessage(
        bytes(32),
        tuple(
            CertificateEntry(bytes([0x30, i]), carrier if i == position else ())
            for i in range(entries)
        ),
    )


@SETTINGS
@given(st.binary(max_size=200), st.integers(0, 3), st.integers(1, 4), st.booleans())
def test_cmw_attestation_extraction_raises_only_project_errors(
    extension_data: bytes, position: int, entries: int, offered: bool
) -> None:
    certificate = _certificate(extension_data, position % entries, entries)
    try:
        cmw = expat.extract(certificate, offered=offered)
    except UnofferedExtension:
        assert not offered
    except MisplacedExtension:
        assert offered and position % entries != 0
    except AttquicError:
        pass
    else:
        assert cmw is not None and offered and position % entries == 0


@SETTINGS
@given(st.data())
def test_mutated_cmw_attestation_raises_only_project_errors(data: st.DataObject) -> None:
    genuine = bytearray(expat.leaf_extension(_CMW).data)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(genuine) - 1))
        genuine[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(genuine)))
    with contextlib.suppress(AttquicError):
        expat.extract(_certificate(bytes(genuine[:cut]), 0, 1), offered=True)


# --- RFC 9261: reflection -------------------------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
def test_own_authenticator_reflected_never_validates(hash_name: str) -> None:
    """Reflection at the RFC 9261 layer: a request carrying one of our own contexts is never
    answered, and an authenticator built in our role never validates as the peer's, even with
    the context of our outstanding request."""
    size = 32 if hash_name == "sha256" else 48
    exporter = ExporterSecret(hash_name, secrets.token_bytes(size))
    client = ExportedAuthenticators(exporter, Role.CLIENT)
    ours = client.request([expat.offer()])
    reflected = AuthenticatorRequest(13, ours.context, ours.extensions)
    with pytest.raises(ContextAlreadyUsed):
        client.authenticate(reflected, IDENTITY, [expat.leaf_extension(_CMW)])
    # a second client-role instance on the same connection answers the reflected request
    mirror = ExportedAuthenticators(exporter, Role.CLIENT)
    answer = mirror.authenticate(reflected, IDENTITY, [expat.leaf_extension(_CMW)])
    with pytest.raises(AuthenticatorError):
        client.validate(answer)
    assert not client.outstanding  # the request is consumed by the failed attempt


# --- EAR ------------------------------------------------------------------------------------------

_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_CLAIM_NAMES = st.sampled_from(
    [
        "eat_profile",
        "iat",
        "exp",
        "nbf",
        "ear.verifier-id",
        "verifier-id",
        "submods",
        "ear.status",
        "status",
        "eat_nonce",
        "ear.raw-evidence",
        "ear.trustworthiness-vector",
        "ear.appraisal-policy-id",
    ]
)
_CLAIMS = st.dictionaries(_CLAIM_NAMES | st.text(max_size=8), _JSON, max_size=8)


@SETTINGS
@given(_CLAIMS)
def test_ear_claims_raise_only_project_errors(claims: dict[str, object]) -> None:
    with contextlib.suppress(AttquicError):
        decode_claims(parse_claims_json(json.dumps(claims).encode()))


@SETTINGS
@given(st.binary(max_size=300))
@example(b'{"iat":' + b"1" * 5000 + b"}")  # found by fuzz/fuzz_ear.py: leaked ValueError
@example(b"[" * 100_000)
def test_ear_claims_json_raises_only_project_errors(payload: bytes) -> None:
    with contextlib.suppress(AttquicError):
        decode_claims(parse_claims_json(payload))


def test_over_long_integer_claim_is_evidence_invalid() -> None:
    """Regression (fuzz/fuzz_ear.py): Python's int_max_str_digits ValueError must not leak."""
    with pytest.raises(EvidenceInvalid):
        parse_claims_json(b'{"iat":' + b"9" * 5000 + b"}")


_EAR_KEY = generate_signing_key()
_EAR_VERIFIER = EarVerifier([public_jwk(_EAR_KEY)], required_status="none")


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.text("ABCDEFabcdef0123456789-_", max_size=40), min_size=1, max_size=4).map(
            lambda parts: ".".join(parts).encode()
        ),
    )
)
def test_ear_tokens_raise_only_project_errors(token: bytes) -> None:
    with contextlib.suppress(AttquicError):
        _EAR_VERIFIER.verify(token, now=1_760_000_000.0, expected_nonce=bytes(32))


# --- TDX quote lazy parts -------------------------------------------------------------------------

_SAMPLE = TDX_SAMPLES / "go-tdx-guest/cos-113-tdx-quote.dat"


@SETTINGS
@given(st.data())
def test_mutated_certification_data_raises_only_quote_format_errors(data: st.DataObject) -> None:
    """Flip bytes in the signature data (QE report, PEM chain) and read every lazy part."""
    quote = bytearray(_SAMPLE.read_bytes())
    start = 632  # after the v4 header and TD report: the signature data
    for _ in range(data.draw(st.integers(1, 6))):
        quote[data.draw(st.integers(start, len(quote) - 1))] = data.draw(st.integers(0, 255))
    try:
        parsed = parse_quote(bytes(quote))
    except QuoteFormatError:
        return
    for lazy in ("pck_chain_der", "pck_leaf", "fmspc", "ca"):
        with contextlib.suppress(QuoteFormatError):
            getattr(parsed, lazy)


# --- the session under a man in the middle --------------------------------------------------------


def _evidence(binding: Binding) -> CMW:
    return CMWRecord(profile.TDX_QUOTE_MEDIA_TYPE, binding.report_data, profile.IND_EVIDENCE)


@dataclass
class _Endpoint:
    session: AttestationSession
    verifications: list[bytes] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    gate_opened: bool = False
    opened_at: float | None = None
    accepted_any: bool = False
    closed: bool = False

    def drain(self, now: float, verdict: Callable[[], bool]) -> None:
        while (event := self.session.next_event()) is not None:
            if isinstance(event, SendControlData):
                self.sent.append(event.data)
            elif isinstance(event, EvidenceNeeded):
                self.session.evidence_ready(event.context, _evidence(event.binding), now)
            elif isinstance(event, VerificationNeeded):
                self.verifications.append(event.context)
                assert isinstance(event.cmw, CMWRecord)
                bound = event.binding.matches_report_data(event.cmw.value)
                if bound and verdict():
                    self.accepted_any = True
                    result = HardwareAttestation(
                        verified_at=now,
                        media_type="x",
                        evidence=event.cmw.value,
                        trust_anchor=TrustAnchor.TEST_ROOT,
                    )
                    self.session.verification_succeeded(event.context, result, now)
                else:
                    self.session.verification_failed(event.context, BindingMismatch("no"))
            elif isinstance(event, GateOpened):
                self.gate_opened = True
                self.opened_at = now
            elif isinstance(event, CloseConnection):
                self.closed = True


def _endpoint(*, is_client: bool, attests: bool, verifies: bool) -> _Endpoint:
    return _Endpoint(
        AttestationSession(
            SessionConfiguration(
                is_client=is_client,
                attests=attests,
                requires_peer_attestation=verifies,
                identity=IDENTITY if attests else None,
                attestation_timeout=5.0,
            )
        )
    )


_ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["deliver", "drop", "duplicate", "reflect", "inject", "swap", "wait"]),
        st.booleans(),  # direction: True = client -> server
        st.floats(0.0, 3.0),  # time advance
        st.binary(max_size=40),  # bytes for "inject"
    ),
    max_size=25,
)
_ROLES = st.sampled_from(
    [(False, True, True, False), (True, False, False, True), (True, True, True, True)]
)


def _run_man_in_the_middle(
    roles: tuple[bool, bool, bool, bool],
    actions: list[tuple[str, bool, float, bytes]],
    verdicts: list[bool],
) -> tuple[_Endpoint, _Endpoint]:
    client_attests, client_verifies, server_attests, server_verifies = roles
    exporter = ExporterSecret("sha256", secrets.token_bytes(32))
    client = _endpoint(is_client=True, attests=client_attests, verifies=client_verifies)
    server = _endpoint(is_client=False, attests=server_attests, verifies=server_verifies)
    queue = iter(verdicts * 10)

    def verdict() -> bool:
        return next(queue, True)

    now = 0.0
    server.session.handshake_completed(exporter, now)
    client.session.handshake_completed(exporter, now)
    wires: dict[bool, list[bytes]] = {True: [], False: []}
    for action, to_server, advance, junk in actions:
        for side in (client, server):
            side.drain(now, verdict)
        wires[True] += client.sent
        wires[False] += server.sent
        client.sent.clear()
        server.sent.clear()
        target = server if to_server else client
        wire = wires[to_server]
        if action == "deliver" and wire:
            target.session.receive_control_data(wire.pop(0), False, now)
        elif action == "drop" and wire:
            wire.pop(0)
        elif action == "duplicate" and wire:
            target.session.receive_control_data(wire[0], False, now)
        elif action == "reflect" and wires[not to_server]:
            # what the target itself sent comes back to it
            target.session.receive_control_data(wires[not to_server][0], False, now)
        elif action == "inject":
            target.session.receive_control_data(junk, False, now)
        elif action == "swap" and len(wire) > 1:
            wire[0], wire[1] = wire[1], wire[0]
        for side in (client, server):
            side.drain(now, verdict)  # the input's effects happen at the input's time
        now += advance
        for side in (client, server):
            side.session.handle_timer(now)
        for side, verifies in ((client, client_verifies), (server, server_verifies)):
            side.drain(now, verdict)
            if side.gate_opened and verifies:
                assert side.accepted_any, "gate opened without an accepted verification"
            if side.opened_at is not None:
                assert side.opened_at < 5.0, "gate opened after the attestation deadline"
    for side in (client, server):
        side.session.handle_timer(now + 10.0)
        side.drain(now + 10.0, verdict)
        assert side.gate_opened or side.closed
    return client, server


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ROLES, _ACTIONS, st.lists(st.booleans(), min_size=1, max_size=4))
def test_man_in_the_middle_never_opens_a_gate_without_verification(
    roles: tuple[bool, bool, bool, bool],
    actions: list[tuple[str, bool, float, bytes]],
    verdicts: list[bool],
) -> None:
    """Two honest sessions, a hostile network between them. Whatever is dropped, duplicated,
    reflected, injected or reordered and whenever timers fire, a side that requires the peer's
    attestation opens its gate only after its verifier accepted evidence bound to its own
    connection; a side that attests opens only after it actually sent an authenticator."""
    _run_man_in_the_middle(roles, actions, verdicts)


@pytest.mark.parametrize("roles", [(False, True, True, False), (True, True, True, True)])
def test_an_honest_network_opens_both_gates(roles: tuple[bool, bool, bool, bool]) -> None:
    """The property above is not vacuous: delivering everything in order opens both gates."""
    actions = [("deliver", direction, 0.1, b"") for _ in range(6) for direction in (True, False)]
    client, server = _run_man_in_the_middle(roles, actions, [True])
    assert client.gate_opened and server.gate_opened
    assert client.accepted_any or server.accepted_any


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=60), st.floats(0.0, 4.0)), max_size=10))
def test_attesting_server_opens_only_after_a_result_for_its_own_answer(
    inputs: list[tuple[bytes, float]],
) -> None:
    """A hostile client that sends SETUP(requests) and then anything, including RESULT frames
    with guessed contexts: the server's gate stays shut unless it sent an authenticator and got
    a RESULT naming that authenticator's context."""
    exporter = ExporterSecret("sha256", secrets.token_bytes(32))
    server = _endpoint(is_client=False, attests=True, verifies=False)
    server.session.handshake_completed(exporter, 0.0)
    hostile = ExportedAuthenticators(exporter, Role.CLIENT)
    setup = frames.encode_frame(frames.SetupFrame(1, True, False))
    server.session.receive_control_data(setup, False, 0.0)
    now = 0.0
    for data, advance in inputs:
        if data[:1] == b"\x02":  # sometimes send a genuine request instead of junk
            request = hostile.request([expat.offer()])
            data = frames.encode_frame(frames.AuthenticatorRequestFrame(request.encode()))
        elif data[:1] == b"\x04":  # and sometimes a RESULT for a random context
            data = frames.encode_frame(frames.ResultFrame(secrets.token_bytes(32)))
        server.session.receive_control_data(data, False, now)
        now += advance
        server.session.handle_timer(now)
        server.drain(now, lambda: True)
        assert not server.gate_opened, "no RESULT for the server's own answer was ever sent"


def test_cmw_attestation_wraps_the_cbor_cmw() -> None:
    """The extension_data the mutation test starts from: uint16 length ‖ CBOR CMW."""
    assert expat.leaf_extension(_CMW).data[2:] == encode_cbor(_CMW)


def test_pck_leaf_with_an_invalid_x509_version_is_a_quote_format_error() -> None:
    """Regression (fuzz/fuzz_tdx_quote.py): cryptography raises ``InvalidVersion``, which is not
    a ``ValueError``, for a certificate whose version field is out of range; it leaked from
    ``TdxQuote.pck_leaf``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SimulatedTdxWarning)
        quote = SimulatedTdxHierarchy.default().quote(bytes(64))
    leaf_der = parse_quote(quote).pck_chain_der[0]
    version_field = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2 (v3)
    assert version_field in leaf_der
    broken_der = leaf_der.replace(version_field, b"\xa0\x03\x02\x01\x12", 1)  # "version 18"
    old_b64 = base64.b64encode(leaf_der)
    new_b64 = base64.b64encode(broken_der)
    wrapped = b"\n".join(new_b64[i : i + 64] for i in range(0, len(new_b64), 64))
    original = b"\n".join(old_b64[i : i + 64] for i in range(0, len(old_b64), 64))
    assert original in quote
    broken = parse_quote(quote.replace(original, wrapped, 1))
    with pytest.raises(QuoteFormatError, match="not valid DER"):
        _ = broken.pck_leaf
