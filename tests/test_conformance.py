"""Conformance to draft-fossati-seat-expat -04 and the attquic/2 wire profile.

The wire profile object, the binder vector from OpenSSL, SETUP versions (attquic/2 against the
legacy expat -03 profile, over real UDP), a valid authenticator without ``cmw_attestation``
(REFUSED) and a non-empty ``cmw_attestation`` offer (still an offer).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from attack_helpers import (
    HostilePeer,
    forge_authenticator,
    hostile_client,
    hostile_server,
)
from channel_helpers import (
    EchoApp,
    attestation,
    client_tls,
    default_attester,
    echo_once,
    running_server,
    simulated_verifier,
)

import attquic
from attquic import CloseCode, expat, frames, profile
from attquic.ea.authenticator import ExportedAuthenticators
from attquic.ea.identity import generate_self_signed
from attquic.ea.messages import AuthenticatorRequest, Extension, Role
from attquic.errors import ConfigurationError
from attquic.keyschedule import Binding, ExporterSecret
from attquic.profile import ATTQUIC_2, ATTQUIC_2_LEGACY_EXPAT_03, WireProfile

VECTOR_FILE = Path(__file__).resolve().parent / "data" / "binder-expat04.json"
PROFILES = {"attquic/2": ATTQUIC_2, "attquic/2-legacy-expat-03": ATTQUIC_2_LEGACY_EXPAT_03}


# --- the profile object --------------------------------------------------------------------------


def test_attquic_2_is_the_default_profile() -> None:
    assert ATTQUIC_2.setup_version == 2
    assert ATTQUIC_2.binding_exporter_label == b"EXPORTER-cmw-attestation"
    assert ATTQUIC_2.binding_exporter_length == 32
    assert ATTQUIC_2.cmw_extension == 0xFFFF
    assert ATTQUIC_2.passport_media_type == (
        'application/eat+jwt; eat_profile="tag:ietf.org,2026:rats/ear#03"'
    )
    assert "tag:github.com,2023:veraison/ear" in ATTQUIC_2.accepted_ear_profiles
    config = attestation(verifier=simulated_verifier())
    assert config.profile is ATTQUIC_2


def test_legacy_profile_differs_only_in_label_and_setup_version() -> None:
    legacy = ATTQUIC_2_LEGACY_EXPAT_03
    assert legacy.binding_exporter_label == b"Attestation"
    assert legacy.setup_version not in (ATTQUIC_2.setup_version, 1)
    differing = {
        f.name
        for f in dataclasses.fields(WireProfile)
        if getattr(legacy, f.name) != getattr(ATTQUIC_2, f.name)
    }
    assert differing == {"name", "setup_version", "binding_exporter_label", "expat_draft"}
    assert profile.KNOWN_PROFILES[legacy.setup_version] is legacy


@pytest.mark.parametrize(
    "change",
    [
        {"setup_version": -1},
        {"setup_version": 2**62},
        {"binding_exporter_label": b""},
        {"binding_exporter_length": 0},
        {"binding_exporter_length": 256},
        {"cmw_extension": 0x10000},
        {"report_data_layout": 2},
        {"ear_profile": "tag:example.com,2026:not-accepted"},
    ],
)
def test_profile_rejects_invalid_values(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        dataclasses.replace(ATTQUIC_2, **change)


def test_cmw_extension_override_lands_in_the_profile() -> None:
    config = attestation(verifier=simulated_verifier(), cmw_extension=0xFF00)
    assert config.profile.cmw_extension == config.cmw_extension == 0xFF00
    assert config.profile.binding_exporter_label == ATTQUIC_2.binding_exporter_label
    legacy = attestation(
        verifier=simulated_verifier(), profile=ATTQUIC_2_LEGACY_EXPAT_03, cmw_extension=0xFF00
    )
    assert legacy.profile == ATTQUIC_2_LEGACY_EXPAT_03.with_cmw_extension(0xFF00)
    with pytest.raises(ConfigurationError):
        attestation(verifier=simulated_verifier(), profile="attquic/2")  # type: ignore[arg-type]


# --- the binder vector (exporter values from OpenSSL) --------------------------------------------


def _vectors() -> list[Any]:
    document = json.loads(VECTOR_FILE.read_text())
    return [
        pytest.param(vector, name, id=f"{vector['hash']}-{name}")
        for vector in document["vectors"]
        for name in vector["profiles"]
    ]


@pytest.mark.parametrize(("vector", "profile_name"), _vectors())
def test_binder_vector_from_openssl(vector: dict[str, Any], profile_name: str) -> None:
    expected = vector["profiles"][profile_name]
    wire_profile = PROFILES[profile_name]
    assert expected["label"].encode() == wire_profile.binding_exporter_label
    exporter = ExporterSecret(vector["hash"], bytes.fromhex(vector["exporter_master_secret"]))
    context = bytes.fromhex(vector["certificate_request_context"])
    spki = bytes.fromhex(vector["spki_der"])

    # attquic's TLS-Exporter over OpenSSL's exporter master secret == OpenSSL's exporter
    exported = exporter.export_keying_material(wire_profile.binding_exporter_label, context, 32)
    assert exported.hex() == expected["exported"]

    binding = Binding.compute(exporter, context, spki, wire_profile=wire_profile)
    assert binding.binding.hex() == expected["binding"]
    assert binding.aik_pub_hash.hex() == expected["aik_pub_hash"]
    assert binding.report_data.hex() == expected["report_data"]
    assert len(binding.binding) == hashlib.new(vector["hash"]).digest_size


def test_the_two_labels_give_different_bindings() -> None:
    for vector in json.loads(VECTOR_FILE.read_text())["vectors"]:
        bindings = {p["binding"] for p in vector["profiles"].values()}
        assert len(bindings) == 2


# --- SETUP version: attquic/2 against the legacy profile, over UDP -------------------------------


def _server_config(wire_profile: WireProfile) -> attquic.AttestationConfiguration:
    return attestation(attester=default_attester(), profile=wire_profile, attestation_timeout=5.0)


def _client_config(wire_profile: WireProfile) -> attquic.AttestationConfiguration:
    return attestation(verifier=simulated_verifier(), profile=wire_profile, attestation_timeout=5.0)


@pytest.mark.parametrize("wire_profile", [ATTQUIC_2, ATTQUIC_2_LEGACY_EXPAT_03], ids=str)
@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
async def test_same_profile_interoperates(wire_profile: WireProfile) -> None:
    app = EchoApp()
    async with running_server(_server_config(wire_profile), app) as server:
        async with attquic.connect(
            "127.0.0.1",
            server.port,
            configuration=client_tls(),
            attestation=_client_config(wire_profile),
        ) as connection:
            assert connection.peer_attestation is not None
            assert await echo_once(connection, b"same profile") == b"same profile"
    assert app.received == [b"same profile"]


@pytest.mark.parametrize(
    ("client_profile", "server_profile"),
    [(ATTQUIC_2, ATTQUIC_2_LEGACY_EXPAT_03), (ATTQUIC_2_LEGACY_EXPAT_03, ATTQUIC_2)],
    ids=["attquic2-client-legacy-server", "legacy-client-attquic2-server"],
)
@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
async def test_mixed_profiles_are_refused_at_setup(
    client_profile: WireProfile, server_profile: WireProfile
) -> None:
    """The server reads the client's SETUP first and closes: PROTOCOL_VIOLATION, and the
    reason names both versions and both profiles."""
    app = EchoApp()
    async with running_server(_server_config(server_profile), app) as server:
        with pytest.raises(attquic.ConnectionClosed) as info:
            async with attquic.connect(
                "127.0.0.1",
                server.port,
                configuration=client_tls(),
                attestation=_client_config(client_profile),
            ):
                pytest.fail("the application got a connection")
    closed = info.value
    assert closed.code == CloseCode.PROTOCOL_VIOLATION and closed.by_peer
    for p in (client_profile, server_profile):
        assert f"{p.setup_version} ({p.name})" in closed.reason
    assert app.connections == []


@pytest.mark.parametrize("version", [1, 3, 0x203 + 1, 2**40])
@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
async def test_unknown_setup_version_is_a_protocol_violation(version: int) -> None:
    """A hostile server announces another version (attquic/1's, or one nobody defined)."""

    async def script(peer: HostilePeer) -> None:
        await peer.next_frame(frames.SetupFrame)
        peer.send_control(frames.SetupFrame(version, requests_attestation=False, attests=True))

    async with hostile_server(script) as (port, peers):
        with pytest.raises(attquic.ConnectionClosed) as info:
            async with attquic.connect(
                "127.0.0.1", port, configuration=client_tls(), attestation=_client_config(ATTQUIC_2)
            ):
                pytest.fail("the application got a connection")
        assert await peers[0].close_code() == CloseCode.PROTOCOL_VIOLATION
    closed = info.value
    assert closed.code == CloseCode.PROTOCOL_VIOLATION and not closed.by_peer
    assert f"SETUP version {version} (unknown profile)" in closed.reason
    assert "version 2 (attquic/2)" in closed.reason


# --- a valid authenticator without cmw_attestation: REFUSED -------------------------------------


@pytest.mark.anyio
@pytest.mark.network
async def test_valid_authenticator_without_cmw_attestation_is_refused() -> None:
    """expat -04 §3.1: the attester MAY omit the extension; §3.3: the relying party MAY reject.
    attquic rejects with REFUSED (not PROTOCOL_VIOLATION): the authenticator itself is valid."""
    identity = generate_self_signed("p256", common_name="attests nothing")

    async def script(peer: HostilePeer) -> None:
        await peer.next_frame(frames.SetupFrame)
        peer.send_control(frames.SetupFrame(2, requests_attestation=False, attests=True))
        request = await peer.next_request()
        answer = forge_authenticator(
            peer.ea_keys(Role.SERVER), request.encode(), request.context, identity, 0x0403, [[]]
        )
        peer.send_control(frames.AuthenticatorFrame(answer))

    async with hostile_server(script) as (port, peers):
        with pytest.raises(attquic.ConnectionClosed) as info:
            async with attquic.connect(
                "127.0.0.1", port, configuration=client_tls(), attestation=_client_config(ATTQUIC_2)
            ):
                pytest.fail("the application got a connection")
        assert await peers[0].close_code() == CloseCode.REFUSED
    assert info.value.code == CloseCode.REFUSED
    assert "without cmw_attestation" in info.value.reason


# --- a non-empty cmw_attestation offer is still an offer -----------------------------------------


@pytest.mark.parametrize("offer", [b"\x00", b'{"formats":["application/cmw+cbor"]}'])
@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
async def test_non_empty_offer_is_answered_with_evidence(offer: bytes) -> None:
    """A client whose request carries content in cmw_attestation (a future format preference)
    gets evidence, exactly as with the empty offer."""
    app = EchoApp()
    async with running_server(_server_config(ATTQUIC_2), app) as server:
        async with hostile_client(server.port) as peer:
            await peer.handshake_done.wait()
            peer.send_control(frames.SetupFrame(2, requests_attestation=True, attests=False))
            await peer.next_frame(frames.SetupFrame)
            ea = ExportedAuthenticators(peer.exporter, Role.CLIENT)
            request = ea.request([Extension(profile.CMW_ATTESTATION_EXTENSION, offer)])
            assert expat.is_offered(AuthenticatorRequest.decode(request.encode()))
            peer.send_control(frames.AuthenticatorRequestFrame(request.encode()))
            answer = await peer.next_frame(frames.AuthenticatorFrame)
            assert isinstance(answer, frames.AuthenticatorFrame)
            validated = ea.validate(answer.authenticator)
            cmw = expat.extract(validated.certificate, offered=True)
            assert cmw is not None
            binding = Binding.compute(peer.exporter, request.context, validated.spki_der)
            result = await simulated_verifier().verify(cmw, binding, now=time.time())
            assert result.media_type == profile.TDX_QUOTE_MEDIA_TYPE
    assert app.connections == []  # the hostile client never sent RESULT: no gate, no app
