"""The attack suite: hostile peers over real QUIC/UDP on 127.0.0.1 against attquic endpoints.

Each test is one attack from docs/security.md (threat, mitigation, test name). A hostile peer
is plain aioquic speaking attquic/2 by hand (tests/attack_helpers.py); the attested side is the
real attquic client or server with simulated TDX evidence verified by full DCAP. Every test
asserts the close code both sides see and that nothing reached the application.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioquic.asyncio.server import serve as quic_serve
from aioquic.tls import Epoch, SessionTicket
from attack_helpers import (
    HostilePeer,
    datagram_configs,
    forge_authenticator,
    genuine_authenticator,
    genuine_evidence,
    hostile_client,
    hostile_server,
    setup_frame,
)
from channel_helpers import (
    TEST_CA,
    EchoApp,
    RecordingAttester,
    StallingAttester,
    attestation,
    client_tls,
    connect_local,
    default_attester,
    rejected,
    running_server,
    server_tls,
    simulated_verifier,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc.jwk import ECKey

import attquic
from attquic import CloseCode, expat, frames, profile
from attquic.cmw import CMW, CMWRecord
from attquic.ea.authenticator import ExportedAuthenticators
from attquic.ea.identity import generate_self_signed
from attquic.ea.messages import (
    Authenticator,
    AuthenticatorRequest,
    Extension,
    Role,
    signature_algorithms_extension,
)
from attquic.ear import (
    IETF_PROFILE,
    Appraisal,
    EarChannelVerifier,
    EarClaims,
    EarVerifier,
    Status,
    VerifierId,
    generate_signing_key,
    issue_ear,
    public_jwk,
)
from attquic.errors import ConfigurationError
from attquic.keyschedule import Binding
from attquic.tdx.simulated import DEFAULT_MEASUREMENTS, SimulatedTdxWarning

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning"),
]

SHORT_TIMEOUT = 1.5
"""attestation_timeout for attacks that end in TIMEOUT (the only waits in this file)."""

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SimulatedTdxWarning)
    GENUINE = default_attester()
#: A certificate the client's trust store accepts (identity (b)): the attacks below are about
#: evidence and messages, not about an untrusted certificate (test_conformance covers that).
HOSTILE_IDENTITY = TEST_CA.issue("hostile attester")


def verifying_client(**kwargs: Any) -> attquic.AttestationConfiguration:
    return attestation(verifier=simulated_verifier(), attestation_timeout=5.0, **kwargs)


def attesting_server(**kwargs: Any) -> attquic.AttestationConfiguration:
    options: dict[str, Any] = {"attestation_timeout": 5.0, **kwargs}
    return attestation(attester=GENUINE, **options)


def mutual_server(**kwargs: Any) -> attquic.AttestationConfiguration:
    options: dict[str, Any] = {"attestation_timeout": 5.0, **kwargs}
    return attestation(attester=GENUINE, verifier=simulated_verifier(), **options)


async def client_is_rejected(
    port: int, config: attquic.AttestationConfiguration | None = None
) -> attquic.ConnectionClosed:
    """Connect an attquic client; it must fail before the application gets a connection."""
    return await rejected(port, config or verifying_client())


async def server_rejects(peer: HostilePeer, app: EchoApp, code: CloseCode) -> None:
    """The attquic server closed ``peer``'s connection with ``code`` and its app saw nothing."""
    assert await peer.close_code() == code
    assert app.connections == []
    assert app.received == []


async def serve_as_attester(peer: HostilePeer) -> AuthenticatorRequest:
    """The honest opening of a server that attests: read SETUP, answer it, read the request."""
    await peer.next_frame(frames.SetupFrame)
    peer.send_control(setup_frame(requests=False, attests=True))
    return await peer.next_request()


async def open_as_requester(peer: HostilePeer, *, attests: bool = False) -> None:
    """The honest opening of a client that requests the server's attestation."""
    peer.send_control(setup_frame(requests=True, attests=attests))
    await peer.next_frame(frames.SetupFrame)


def client_request(peer: HostilePeer, context: bytes | None = None) -> AuthenticatorRequest:
    """A ClientCertificateRequest offering cmw_attestation (with ``context`` if given)."""
    if context is None:
        return ExportedAuthenticators(peer.exporter, Role.CLIENT).request([expat.offer()])
    return AuthenticatorRequest(17, context, (expat.offer(), _sigalgs()))


def _sigalgs() -> Extension:
    return signature_algorithms_extension((0x0403,))


# --- replay, relay, diversion -----------------------------------------------------------------


async def test_replayed_authenticator_from_another_connection() -> None:
    """A whole authenticator (CMW, certificate, signature, Finished) captured on connection A
    is presented on connection B: its context answers no request on B."""
    captured: list[bytes] = []

    async def replaying_server(peer: HostilePeer) -> None:
        request = await serve_as_attester(peer)
        if not captured:
            captured.append(await genuine_authenticator(peer, request, GENUINE, HOSTILE_IDENTITY))
        peer.send_control(frames.AuthenticatorFrame(captured[0]))

    async with hostile_server(replaying_server) as (port, peers):
        async with connect_local(port, verifying_client()) as connection:
            assert connection.peer_attestation is not None  # connection A is genuine
        closed = await client_is_rejected(port)
        assert closed.code == CloseCode.PROTOCOL_VIOLATION and not closed.by_peer
        assert await peers[1].close_code() == CloseCode.PROTOCOL_VIOLATION


async def _relay_through(
    genuine_port: int, request: AuthenticatorRequest, relays: list[Authenticator]
) -> bytes:
    """Forward ``request`` verbatim to the genuine attested server on a second connection and
    return the genuine server's authenticator."""
    async with hostile_client(genuine_port) as upstream:
        await open_as_requester(upstream)
        upstream.send_control(frames.AuthenticatorRequestFrame(request.encode()))
        frame = await upstream.next_frame(frames.AuthenticatorFrame)
        assert isinstance(frame, frames.AuthenticatorFrame)
        hash_length = hashlib.new(upstream.exporter.hash_name).digest_size
        relays.append(Authenticator.decode(frame.authenticator, hash_length=hash_length))
        return frame.authenticator


async def test_relayed_authenticator_from_a_genuine_attester() -> None:
    """Relay: a malicious server forwards the client's request, verbatim, to a genuine attested
    server on another connection and relays the genuine authenticator back. The genuine
    authenticator is signed and MACed for the other connection's exporter."""
    relays: list[Authenticator] = []
    async with running_server(attesting_server(), EchoApp()) as genuine:

        async def relaying_server(peer: HostilePeer) -> None:
            request = await serve_as_attester(peer)
            authenticator = await _relay_through(genuine.port, request, relays)
            peer.send_control(frames.AuthenticatorFrame(authenticator))

        async with hostile_server(relaying_server) as (port, peers):
            closed = await client_is_rejected(port)
            assert closed.code == CloseCode.PROTOCOL_VIOLATION
            assert await peers[0].close_code() == CloseCode.PROTOCOL_VIOLATION
    # the relay really happened: the genuine attester answered the client's own context
    assert len(relays) == 1 and relays[0].certificate is not None
    assert "signature" in closed.reason or "Finished" in closed.reason


async def test_relayed_evidence_rewrapped_by_the_relay() -> None:
    """Relay, smarter: the malicious server takes the genuine attester's CMW out of the relayed
    authenticator and re-signs it in an authenticator that is valid on its own connection.
    REPORTDATA commits to the other connection's exporter and the genuine attester's key."""
    relays: list[Authenticator] = []
    async with running_server(attesting_server(), EchoApp()) as genuine:

        async def rewrapping_server(peer: HostilePeer) -> None:
            request = await serve_as_attester(peer)
            await _relay_through(genuine.port, request, relays)
            relayed = relays[0]
            assert relayed.certificate is not None
            cmw = expat.extract(relayed.certificate, offered=True)
            assert cmw is not None
            peer.send_control(
                frames.AuthenticatorFrame(
                    await genuine_authenticator(peer, request, GENUINE, HOSTILE_IDENTITY, cmw=cmw)
                )
            )

        async with hostile_server(rewrapping_server) as (port, peers):
            closed = await client_is_rejected(port)
            assert closed.code == CloseCode.BINDING_MISMATCH
            assert await peers[0].close_code() == CloseCode.BINDING_MISMATCH
    assert len(relays) == 1


async def test_diversion_to_a_td_with_other_rtmrs() -> None:
    """Diversion: evidence that verifies (genuine signatures, this connection's binding) but
    comes from a TD other than the one the policy names: same MRTD, other RTMR3."""
    other_rtmrs = (*DEFAULT_MEASUREMENTS.rtmrs[:3], bytes.fromhex("ab" * 48))
    app = EchoApp()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SimulatedTdxWarning)
        diverted = default_attester(rtmrs=other_rtmrs)
    async with running_server(attestation(attester=diverted), app) as server:
        closed = await client_is_rejected(server.port)
    assert closed.code == CloseCode.POLICY_REJECTED
    assert "rtmr3" in closed.reason.lower()
    assert app.connections == []


class IssuingAttester:
    """Passport model without the service: an EAR for the binding, signed by ``key`` (a
    trusted verifier's key, or the attacker's own)."""

    def __init__(self, key: ECKey) -> None:
        self.key = key

    async def attest(self, binding: Binding) -> CMW:
        now = int(time.time())
        claims = EarClaims(
            profile=IETF_PROFILE,
            iat=now,
            exp=now + 300,
            verifier_id=VerifierId("attack suite", "1"),
            submods={"tdx": Appraisal(status=Status.AFFIRMING)},
            nonce=binding.binding,
        )
        token = issue_ear(claims, self.key)
        return CMWRecord(
            profile.EAR_JWT_MEDIA_TYPE, token.encode(), profile.IND_ATTESTATION_RESULTS
        )


TRUSTED_EAR_KEY = generate_signing_key()


def passport_client() -> attquic.AttestationConfiguration:
    verifier = EarChannelVerifier(EarVerifier([public_jwk(TRUSTED_EAR_KEY)]))
    return attestation(verifier=verifier, attestation_timeout=5.0)


async def test_passport_ear_replayed_from_another_connection() -> None:
    """Replay, passport model: a genuine, validly signed EAR issued for connection A is
    presented on connection B (its eat_nonce is A's binding)."""
    app = EchoApp()
    replaying = RecordingAttester(IssuingAttester(TRUSTED_EAR_KEY), replay_first=True)
    async with running_server(attestation(attester=replaying), app) as server:
        async with connect_local(server.port, passport_client()) as connection:
            assert connection.peer_attestation is not None  # A is genuine
        closed = await client_is_rejected(server.port, passport_client())
    assert closed.code == CloseCode.BINDING_MISMATCH
    assert len(replaying.produced) == 1


async def test_passport_ear_issued_by_the_attester_itself() -> None:
    """A self-issued EAR: right binding, right claims, signed by a key the client does not
    trust as a verifier."""
    app = EchoApp()
    config = attestation(attester=IssuingAttester(generate_signing_key()))
    async with running_server(config, app) as server:
        closed = await client_is_rejected(server.port, passport_client())
    assert closed.code == CloseCode.EVIDENCE_INVALID
    assert app.connections == []


# --- reflection and context reuse ---------------------------------------------------------------


async def test_reflected_request_in_mutual_mode() -> None:
    """Reflection: the server's own CertificateRequest is sent back to it as the client's."""
    app = EchoApp()
    async with running_server(mutual_server(), app) as server, hostile_client(server.port) as peer:
        await open_as_requester(peer, attests=True)
        frame = await peer.next_frame(frames.AuthenticatorRequestFrame)
        peer.send_control(frame)
        await server_rejects(peer, app, CloseCode.PROTOCOL_VIOLATION)


async def test_reflected_context_in_mutual_mode() -> None:
    """Reflection: the client asks for the server's attestation with the server's own request
    context, hoping to get an authenticator it can reflect as its answer."""
    app = EchoApp()
    async with running_server(mutual_server(), app) as server, hostile_client(server.port) as peer:
        await open_as_requester(peer, attests=True)
        theirs = await peer.next_request()
        peer.send_control(
            frames.AuthenticatorRequestFrame(client_request(peer, theirs.context).encode())
        )
        await server_rejects(peer, app, CloseCode.PROTOCOL_VIOLATION)
        assert not any(isinstance(f, frames.AuthenticatorFrame) for f in _drain(peer))


async def test_reflected_authenticator_in_mutual_mode() -> None:
    """Reflection: the server's authenticator (answering the client's request) is sent back to
    the server as the client's answer to the server's request."""
    app = EchoApp()
    async with running_server(mutual_server(), app) as server, hostile_client(server.port) as peer:
        await open_as_requester(peer, attests=True)
        await peer.next_request()
        peer.send_control(frames.AuthenticatorRequestFrame(client_request(peer).encode()))
        answer = await peer.next_frame(frames.AuthenticatorFrame)
        peer.send_control(answer)
        await server_rejects(peer, app, CloseCode.PROTOCOL_VIOLATION)


async def test_context_reused_by_the_requester() -> None:
    """Context reuse: two requests with one certificate_request_context."""
    app = EchoApp()
    async with (
        running_server(attesting_server(), app) as server,
        hostile_client(server.port) as peer,
    ):
        await open_as_requester(peer)
        request = client_request(peer)
        peer.send_control(frames.AuthenticatorRequestFrame(request.encode()))
        peer.send_control(frames.AuthenticatorRequestFrame(request.encode()))
        await server_rejects(peer, app, CloseCode.PROTOCOL_VIOLATION)


async def test_stale_authenticator_answers_a_reattestation() -> None:
    """Context reuse: on re-attestation the server answers with its authenticator for the
    initial request (genuine, same connection) instead of a fresh one."""
    answers: list[bytes] = []

    async def stale_server(peer: HostilePeer) -> None:
        request = await serve_as_attester(peer)
        answers.append(await genuine_authenticator(peer, request, GENUINE, HOSTILE_IDENTITY))
        peer.send_control(frames.AuthenticatorFrame(answers[0]))
        while True:
            frame = await peer.next_frame()
            if isinstance(frame, frames.AuthenticatorRequestFrame):
                peer.send_control(frames.AuthenticatorFrame(answers[0]))

    async with hostile_server(stale_server) as (port, peers):
        async with connect_local(port, verifying_client()) as connection:
            with pytest.raises(attquic.ConnectionClosed) as info:
                await connection.reattest()
        assert info.value.code == CloseCode.PROTOCOL_VIOLATION
        assert await peers[0].close_code() == CloseCode.PROTOCOL_VIOLATION


# --- malformed authenticators ------------------------------------------------------------------


async def _client_rejects_answer(
    forge: object, code: CloseCode, config: attquic.AttestationConfiguration | None = None
) -> attquic.ConnectionClosed:
    """A hostile attesting server answers the client's request with ``forge(peer, request)``."""

    async def server(peer: HostilePeer) -> None:
        request = await serve_as_attester(peer)
        answer = await forge(peer, request)  # type: ignore[operator]
        peer.send_control(frames.AuthenticatorFrame(answer))

    async with hostile_server(server) as (port, peers):
        closed = await client_is_rejected(port, config)
        assert closed.code == code, closed
        assert await peers[0].close_code() == code
    return closed


async def test_cmw_attestation_not_offered() -> None:
    """The client offered cmw_attestation at codepoint 0xFFFE; the server's leaf carries it at
    0xFFFF, an extension the request did not offer (unsupported_extension)."""

    async def forge(peer: HostilePeer, request: AuthenticatorRequest) -> bytes:
        assert expat.is_offered(request, 0xFFFE) and not expat.is_offered(request)
        cmw = await genuine_evidence(peer, request, GENUINE, HOSTILE_IDENTITY)
        return forge_authenticator(
            peer.ea_keys(Role.SERVER),
            request.encode(),
            request.context,
            HOSTILE_IDENTITY,
            0x0403,
            [[expat.leaf_extension(cmw)]],
        )

    await _client_rejects_answer(
        forge, CloseCode.PROTOCOL_VIOLATION, verifying_client(cmw_extension=0xFFFE)
    )


async def test_cmw_attestation_on_a_non_leaf_entry() -> None:
    """Valid evidence for this connection and key, but on the second certificate entry."""

    async def forge(peer: HostilePeer, request: AuthenticatorRequest) -> bytes:
        cmw = await genuine_evidence(peer, request, GENUINE, HOSTILE_IDENTITY)
        return forge_authenticator(
            peer.ea_keys(Role.SERVER),
            request.encode(),
            request.context,
            HOSTILE_IDENTITY,
            0x0403,
            [[], [expat.leaf_extension(cmw)]],
            extra_entries=1,
        )

    await _client_rejects_answer(forge, CloseCode.PROTOCOL_VIOLATION)


async def test_authenticator_for_a_request_never_sent() -> None:
    """A valid authenticator (this connection's keys, genuine evidence) for a context the
    client never asked with."""

    async def forge(peer: HostilePeer, request: AuthenticatorRequest) -> bytes:
        invented = AuthenticatorRequest(17, secrets.token_bytes(32), request.extensions)
        return await genuine_authenticator(peer, invented, GENUINE, HOSTILE_IDENTITY)

    await _client_rejects_answer(forge, CloseCode.PROTOCOL_VIOLATION)


async def test_signature_scheme_not_offered() -> None:
    """CertificateVerify with rsa_pkcs1_sha256 (0x0401): never offered, not a TLS 1.3 scheme."""
    rsa_identity = generate_self_signed("rsa", common_name="pkcs1 attester")
    assert isinstance(rsa_identity.private_key, rsa.RSAPrivateKey)
    rsa_key = rsa_identity.private_key

    async def forge(peer: HostilePeer, request: AuthenticatorRequest) -> bytes:
        assert 0x0401 not in request.signature_schemes
        cmw = await genuine_evidence(peer, request, GENUINE, rsa_identity)
        return forge_authenticator(
            peer.ea_keys(Role.SERVER),
            request.encode(),
            request.context,
            rsa_identity,
            0x0401,
            [[expat.leaf_extension(cmw)]],
            signer=lambda content: rsa_key.sign(content, padding.PKCS1v15(), hashes.SHA256()),
        )

    await _client_rejects_answer(forge, CloseCode.PROTOCOL_VIOLATION)


async def test_truncated_authenticator() -> None:
    """A genuine authenticator cut short inside a well-formed frame."""

    async def forge(peer: HostilePeer, request: AuthenticatorRequest) -> bytes:
        return (await genuine_authenticator(peer, request, GENUINE, HOSTILE_IDENTITY))[:-7]

    await _client_rejects_answer(forge, CloseCode.PROTOCOL_VIOLATION)


# --- malformed control streams -------------------------------------------------------------------


async def _client_rejects_control(
    script_bytes: list[tuple[bytes, bool]], code: CloseCode, *, wait_for_setup: bool = True
) -> attquic.ConnectionClosed:
    """A hostile server writes ``script_bytes`` (data, end_stream) on the control stream."""

    async def server(peer: HostilePeer) -> None:
        if wait_for_setup:
            await peer.next_frame(frames.SetupFrame)
        for data, end in script_bytes:
            peer.send_control(data, end_stream=end)

    async with hostile_server(server) as (port, peers):
        closed = await client_is_rejected(port)
        assert closed.code == code, closed
        assert await peers[0].close_code() == code
    return closed


SERVER_SETUP = setup_frame(requests=False, attests=True)


async def test_truncated_frame_then_end_of_stream() -> None:
    """A frame header announcing 1000 bytes, 100 of them, then FIN on the control stream."""
    await _client_rejects_control(
        [(SERVER_SETUP + b"\x03\x43\xe8" + bytes(100), True)], CloseCode.PROTOCOL_VIOLATION
    )


async def test_truncated_frame_stalls_into_timeout() -> None:
    """A frame that never completes (no FIN): the attestation deadline closes the connection."""

    async def server(peer: HostilePeer) -> None:
        await peer.next_frame(frames.SetupFrame)
        peer.send_control(SERVER_SETUP + b"\x03\x43\xe8" + bytes(100))

    async with hostile_server(server) as (port, peers):
        closed = await client_is_rejected(
            port, attestation(verifier=simulated_verifier(), attestation_timeout=SHORT_TIMEOUT)
        )
        assert closed.code == CloseCode.TIMEOUT
        assert await peers[0].close_code() == CloseCode.TIMEOUT


async def test_oversized_frame_is_rejected_from_its_header() -> None:
    """A header declaring 2^30 bytes: rejected before any payload is sent or buffered."""
    closed = await _client_rejects_control(
        [(SERVER_SETUP + b"\x03\xc0\x00\x00\x00\x40\x00\x00\x00", False)],
        CloseCode.PROTOCOL_VIOLATION,
    )
    assert "bound" in closed.reason


async def test_unknown_frame_type() -> None:
    await _client_rejects_control(
        [(SERVER_SETUP + b"\x21\x02ab", False)], CloseCode.PROTOCOL_VIOLATION
    )


async def test_frame_before_setup() -> None:
    """An AUTHENTICATOR_REQUEST as the server's first frame."""
    request = AuthenticatorRequest(13, secrets.token_bytes(32), (expat.offer(), _sigalgs()))
    await _client_rejects_control(
        [(frames.encode_frame(frames.AuthenticatorRequestFrame(request.encode())), False)],
        CloseCode.PROTOCOL_VIOLATION,
    )


async def test_second_setup() -> None:
    await _client_rejects_control(
        [(SERVER_SETUP + SERVER_SETUP, False)], CloseCode.PROTOCOL_VIOLATION
    )


async def test_unsolicited_result_from_the_attester() -> None:
    """A RESULT for a request the client never answered (it never attests)."""
    await _client_rejects_control(
        [(SERVER_SETUP + frames.encode_frame(frames.ResultFrame(bytes(32))), False)],
        CloseCode.PROTOCOL_VIOLATION,
    )


async def test_forged_result_does_not_open_the_gate() -> None:
    """A client that never asked claims to have accepted the server's attestation, with early
    application data waiting behind the gate."""
    app = EchoApp()
    async with (
        running_server(attesting_server(), app) as server,
        hostile_client(server.port) as peer,
    ):
        await open_as_requester(peer)
        stream_id = peer.next_stream_id()
        peer.send_stream(stream_id, b"early request", end_stream=True)
        peer.send_control(frames.ResultFrame(secrets.token_bytes(32)))
        await server_rejects(peer, app, CloseCode.PROTOCOL_VIOLATION)
        assert stream_id not in peer.inbox.stream_data


async def test_result_before_the_attester_answered() -> None:
    """A client asks for the server's attestation and, in the same write, claims to have
    accepted the answer the server has not sent yet (its attester is still working), with early
    application data waiting behind the gate. The request exists: only "not yet answered" tells
    this RESULT from a genuine one."""
    app = EchoApp()
    server_config = attestation(attester=StallingAttester(), attestation_timeout=5.0)
    async with running_server(server_config, app) as server, hostile_client(server.port) as peer:
        await open_as_requester(peer)
        stream_id = peer.next_stream_id()
        peer.send_stream(stream_id, b"early request", end_stream=True)
        request = client_request(peer)
        peer.send_control(
            frames.encode_frame(frames.AuthenticatorRequestFrame(request.encode()))
            + frames.encode_frame(frames.ResultFrame(request.context))
        )
        await server_rejects(peer, app, CloseCode.PROTOCOL_VIOLATION)
        assert stream_id not in peer.inbox.stream_data


# --- early data and non-attquic peers -----------------------------------------------------------


async def test_early_streams_data_and_datagrams_are_held() -> None:
    """Application bytes on several new streams (bidirectional and unidirectional) and DATAGRAM
    frames before attestation; the client then never completes attestation."""
    app = EchoApp()
    server_config, client_config = datagram_configs()
    server = await attquic.serve(
        "127.0.0.1",
        0,
        configuration=server_config,
        attestation=attesting_server(attestation_timeout=SHORT_TIMEOUT),
        handler=app,
    )
    async with server, hostile_client(server.port, configuration=client_config) as peer:
        await open_as_requester(peer)
        for _ in range(3):
            peer.send_stream(peer.next_stream_id(), b"early bidi data", end_stream=True)
        peer.send_stream(peer.next_stream_id(unidirectional=True), b"early uni data")
        for _ in range(5):
            peer.send_datagram(b"early datagram")
        await server_rejects(peer, app, CloseCode.TIMEOUT)
        assert peer.inbox.stream_data == {}


async def test_early_data_beyond_the_bound_resets_the_stream() -> None:
    """More early bytes than ``early_data_limit``: the stream is refused with BUFFER_OVERFLOW
    (STOP_SENDING and RESET_STREAM), the held bytes dropped, and nothing reaches the app."""
    app = EchoApp()
    config = attesting_server(attestation_timeout=SHORT_TIMEOUT, early_data_limit=4096)
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        await open_as_requester(peer)
        small, large = peer.next_stream_id(), None
        peer.send_stream(small, b"x" * 1000)
        large = peer.next_stream_id()
        peer.send_stream(large, os.urandom(8192), end_stream=True)
        await server_rejects(peer, app, CloseCode.TIMEOUT)
        assert peer.inbox.stop_sending.get(large) == CloseCode.BUFFER_OVERFLOW
        assert peer.inbox.resets.get(large) == CloseCode.BUFFER_OVERFLOW
        assert small not in peer.inbox.stop_sending


async def test_early_data_from_a_server_that_fails_attestation() -> None:
    """Client side of the gate: a server pushes application data on its own bidirectional and
    unidirectional streams before attesting, then fails attestation. ``connect()`` never
    yields, so no stream or byte reaches the client application."""

    async def pushing_server(peer: HostilePeer) -> None:
        await peer.next_frame(frames.SetupFrame)
        peer.send_control(SERVER_SETUP)
        peer.send_stream(peer.next_stream_id(), b"pushed before attestation", end_stream=True)
        peer.send_stream(peer.next_stream_id(unidirectional=True), b"pushed too")
        request = await peer.next_request()
        invented = AuthenticatorRequest(17, secrets.token_bytes(32), request.extensions)
        answer = await genuine_authenticator(peer, invented, GENUINE, HOSTILE_IDENTITY)
        peer.send_control(frames.AuthenticatorFrame(answer))

    async with hostile_server(pushing_server) as (port, peers):
        closed = await client_is_rejected(port)
        assert closed.code == CloseCode.PROTOCOL_VIOLATION
        assert await peers[0].close_code() == CloseCode.PROTOCOL_VIOLATION


@pytest.fixture
async def ticket() -> AsyncIterator[SessionTicket]:
    """A TLS session ticket (with early data allowed) from a plain aioquic server holding the
    same certificate as the attested server, as a 0-RTT attacker would obtain one."""
    tickets: dict[bytes, SessionTicket] = {}
    received: list[SessionTicket] = []
    plain = await quic_serve(
        "127.0.0.1",
        0,
        configuration=server_tls(),
        session_ticket_fetcher=tickets.pop,
        session_ticket_handler=lambda t: tickets.__setitem__(t.ticket, t),
    )
    transport = plain._transport
    assert transport is not None
    config = client_tls()
    config.server_name = "localhost"
    async with hostile_client(
        transport.get_extra_info("sockname")[1],
        configuration=config,
        session_ticket_handler=lambda t: received.append(t),  # type: ignore[arg-type]
    ) as peer:
        await peer.ping()
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.01)
    plain.close()
    assert received and received[0].max_early_data_size is not None
    yield received[0]


async def test_zero_rtt_attempt(ticket: SessionTicket) -> None:
    """0-RTT: a client resumes with a ticket and sends a control frame and application data in
    0-RTT packets. The attested server issues no tickets and accepts no PSK: full handshake,
    early data rejected, and nothing reaches the application."""
    app = EchoApp()
    issued: list[object] = []
    config = client_tls()
    config.server_name = "localhost"
    config.session_ticket = ticket
    async with (
        running_server(attesting_server(attestation_timeout=SHORT_TIMEOUT), app) as server,
        hostile_client(
            server.port,
            configuration=config,
            wait_connected=False,
            session_ticket_handler=issued.append,
        ) as peer,
    ):
        peer.send_control(setup_frame(requests=True, attests=False))
        peer.send_stream(peer.next_stream_id(), b"replayable 0-RTT request", end_stream=True)
        # the bytes above really left in 0-RTT packets (the client holds 0-RTT send keys)
        assert peer._quic._cryptos[Epoch.ZERO_RTT].send.is_valid()
        await asyncio.wait_for(peer.handshake_done.wait(), 5)
        assert peer.handshake is not None
        assert not peer.handshake.session_resumed
        assert not peer.handshake.early_data_accepted
        await server_rejects(peer, app, CloseCode.TIMEOUT)
    assert issued == []  # the attested server never issued a session ticket


async def test_attquic_refuses_to_send_0rtt(ticket: SessionTicket) -> None:
    """The attquic client refuses a configuration carrying a session ticket."""
    config = client_tls()
    config.session_ticket = ticket
    with pytest.raises(ConfigurationError):
        async with attquic.connect(
            "127.0.0.1", 9, configuration=config, attestation=verifying_client()
        ):
            pytest.fail("connected")


async def test_plain_client_writes_application_data_on_stream_0() -> None:
    """A client that does not speak attquic sends an HTTP-like request on stream 0."""
    app = EchoApp()
    async with (
        running_server(attesting_server(), app) as server,
        hostile_client(server.port) as peer,
    ):
        peer.send_stream(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", end_stream=True)
        await server_rejects(peer, app, CloseCode.PROTOCOL_VIOLATION)


async def test_silent_plain_client_times_out() -> None:
    """A client that completes the QUIC handshake and never says anything."""
    app = EchoApp()
    config = attesting_server(attestation_timeout=SHORT_TIMEOUT)
    async with running_server(config, app) as server, hostile_client(server.port) as peer:
        await server_rejects(peer, app, CloseCode.TIMEOUT)


async def test_attquic_client_against_a_silent_plain_server() -> None:
    """A plain QUIC server that accepts the connection and ignores the control stream."""

    async def silent(peer: HostilePeer) -> None:
        await asyncio.Event().wait()

    async with hostile_server(silent) as (port, peers):
        closed = await client_is_rejected(
            port, attestation(verifier=simulated_verifier(), attestation_timeout=SHORT_TIMEOUT)
        )
        assert closed.code == CloseCode.TIMEOUT
        assert await peers[0].close_code() == CloseCode.TIMEOUT
        assert isinstance(_drain(peers[0])[0], frames.SetupFrame)  # it did see our SETUP


async def test_attquic_client_against_a_plain_echo_server() -> None:
    """A plain QUIC echo server reflects the client's SETUP: a peer that does not attest."""

    async def echo(peer: HostilePeer) -> None:
        await asyncio.sleep(0.05)
        peer.send_control(bytes(peer.inbox.control_bytes))

    async with hostile_server(echo) as (port, peers):
        closed = await client_is_rejected(port)
        assert closed.code == CloseCode.REFUSED
        assert await peers[0].close_code() == CloseCode.REFUSED


def _drain(peer: HostilePeer) -> list[frames.Frame]:
    drained = []
    while not peer.inbox.frames.empty():
        drained.append(peer.inbox.frames.get_nowait())
    return drained
