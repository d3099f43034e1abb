"""Conformance to draft-fossati-seat-expat -04 and the attquic/2 wire profile.

The wire profile object, the binder vector from OpenSSL, SETUP versions (attquic/2 against the
legacy expat -03 profile, over real UDP), a valid authenticator without ``cmw_attestation``
(REFUSED) and a non-empty ``cmw_attestation`` offer (still an offer).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import json
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from aioquic.quic.configuration import QuicConfiguration
from attack_helpers import (
    HostilePeer,
    forge_authenticator,
    genuine_authenticator,
    hostile_client,
    hostile_server,
)
from channel_helpers import (
    CLIENT_IDENTITY,
    TEST_CA,
    TLS_IDENTITY,
    EchoApp,
    attestation,
    client_tls,
    connect_local,
    default_attester,
    echo_once,
    rejected,
    running_server,
    server_tls,
    simulated_verifier,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from test_session import Side, check_fake_evidence
from test_session import pair as session_pair
from test_session import run as run_sessions

import attquic
from attquic import CloseCode, expat, frames, pkix, profile
from attquic.attestation import (
    AttestationChange,
    AttestationResult,
    HardwareAttestation,
    IssuerAssertion,
    compare_attestations,
    measurements,
)
from attquic.demo_ca import DemoCA
from attquic.ea.authenticator import ExportedAuthenticators
from attquic.ea.identity import generate_self_signed
from attquic.ea.messages import AuthenticatorRequest, Extension, Role
from attquic.errors import CertificateRejected, ConfigurationError
from attquic.keyschedule import Binding, ExporterSecret
from attquic.pkix import (
    AuthenticatorIdentity,
    EvidenceOnlyIdentityWarning,
    validate_authenticator_certificate,
)
from attquic.profile import ATTQUIC_2, ATTQUIC_2_LEGACY_EXPAT_03, WireProfile
from attquic.tdx.simulated import DEFAULT_MEASUREMENTS

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
        async with connect_local(server.port, _client_config(wire_profile)) as connection:
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
        closed = await rejected(server.port, _client_config(client_profile))
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
        closed = await rejected(port, _client_config(ATTQUIC_2))
        assert await peers[0].close_code() == CloseCode.PROTOCOL_VIOLATION
    assert closed.code == CloseCode.PROTOCOL_VIOLATION and not closed.by_peer
    assert f"SETUP version {version} (unknown profile)" in closed.reason
    assert "version 2 (attquic/2)" in closed.reason


# --- a valid authenticator without cmw_attestation: REFUSED -------------------------------------


@pytest.mark.anyio
@pytest.mark.network
async def test_valid_authenticator_without_cmw_attestation_is_refused() -> None:
    """expat -04 §3.1: the attester MAY omit the extension; §3.3: the relying party MAY reject.
    attquic rejects with REFUSED (not PROTOCOL_VIOLATION): the authenticator itself is valid."""
    identity = TLS_IDENTITY  # a certificate the client accepts: only cmw_attestation is missing

    async def script(peer: HostilePeer) -> None:
        await peer.next_frame(frames.SetupFrame)
        peer.send_control(frames.SetupFrame(2, requests_attestation=False, attests=True))
        request = await peer.next_request()
        answer = forge_authenticator(
            peer.ea_keys(Role.SERVER), request.encode(), request.context, identity, 0x0403, [[]]
        )
        peer.send_control(frames.AuthenticatorFrame(answer))

    async with hostile_server(script) as (port, peers):
        closed = await rejected(port, _client_config(ATTQUIC_2))
        assert await peers[0].close_code() == CloseCode.REFUSED
    assert closed.code == CloseCode.REFUSED
    assert "without cmw_attestation" in closed.reason


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


# --- X.509 validation of the authenticator's certificate (expat -04 §3.3): unit ------------------

NOW = datetime.datetime.now(datetime.UTC)
NOW_TS = NOW.timestamp()


def _validate(chain: Any, **kwargs: Any) -> AuthenticatorIdentity:
    options: dict[str, Any] = {
        "now": NOW_TS,
        "attester_is_server": True,
        "tls_certificate": None,
        "tls_verified": False,
        "trust_store": None,
        "accept_evidence_only": False,
        **kwargs,
    }
    return validate_authenticator_certificate(tuple(chain), **options)


def _leaf(
    ca: DemoCA,
    *,
    key_usage: x509.KeyUsage | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    ca_flag: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    signer: Any = None,
) -> x509.Certificate:
    """A leaf under ``ca`` with exactly the extensions a test wants."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - datetime.timedelta(hours=1))
        .not_valid_after(not_after or NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()),
            critical=False,
        )
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(signer or ca.private_key, hashes.SHA256())


def _usage(**set_bits: bool) -> x509.KeyUsage:
    bits = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    bits.update(set_bits)
    return x509.KeyUsage(**bits)


def test_identity_a_is_the_certificate_tls_verified() -> None:
    leaf = TLS_IDENTITY.leaf
    assert (
        _validate([leaf], tls_certificate=leaf, tls_verified=True)
        is AuthenticatorIdentity.TLS_CERTIFICATE
    )


@pytest.mark.parametrize(
    ("tls_certificate", "tls_verified", "why"),
    [
        (None, False, "TLS did not verify"),
        (TLS_IDENTITY.leaf, False, "TLS did not verify"),  # verification off: not (a)
        (CLIENT_IDENTITY.leaf, True, "not the certificate TLS verified"),
    ],
)
def test_without_a_trust_store_only_identity_a_passes(
    tls_certificate: x509.Certificate | None, tls_verified: bool, why: str
) -> None:
    with pytest.raises(CertificateRejected, match=why):
        _validate([TLS_IDENTITY.leaf], tls_certificate=tls_certificate, tls_verified=tls_verified)


def test_identity_a_still_checks_validity_at_now() -> None:
    leaf = TLS_IDENTITY.leaf
    later = leaf.not_valid_after_utc.timestamp() + 1
    with pytest.raises(CertificateRejected, match="expired"):
        _validate([leaf], tls_certificate=leaf, tls_verified=True, now=later)
    earlier = leaf.not_valid_before_utc.timestamp() - 1
    with pytest.raises(CertificateRejected, match="not valid yet"):
        _validate([leaf], tls_certificate=leaf, tls_verified=True, now=earlier)


def test_identity_a_needs_digital_signature() -> None:
    leaf = _leaf(TEST_CA, key_usage=_usage(key_encipherment=True))
    with pytest.raises(CertificateRejected, match="digitalSignature"):
        _validate([leaf], tls_certificate=leaf, tls_verified=True)


def test_identity_b_chains_to_the_trust_store() -> None:
    identity = TEST_CA.issue("authenticator", server=True, client=False)
    store = TEST_CA.trust_store
    assert _validate(identity.chain, trust_store=store) is AuthenticatorIdentity.TRUST_STORE
    # no EKU at all, or anyExtendedKeyUsage, is fine for either role
    for eku in (None, [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]):
        leaf = _leaf(TEST_CA, key_usage=_usage(digital_signature=True), eku=eku)
        for server in (True, False):
            result = _validate([leaf], trust_store=store, attester_is_server=server)
            assert result is AuthenticatorIdentity.TRUST_STORE


def _ca(common_name: str, issuer: DemoCA | None = None) -> DemoCA:
    """A CA without a path length limit, self-signed or under ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer = issuer.private_key if issuer is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(NOW + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    return DemoCA(key, builder.sign(signer, hashes.SHA256()))


def test_identity_b_through_an_intermediate() -> None:
    root = _ca("root")
    intermediate = _ca("intermediate", issuer=root)
    leaf = intermediate.issue("deep leaf").leaf
    store = root.trust_store
    chain = [leaf, intermediate.certificate]
    assert _validate(chain, trust_store=store) is AuthenticatorIdentity.TRUST_STORE
    with pytest.raises(CertificateRejected):  # the intermediate is needed to build the path
        _validate([leaf], trust_store=store)
    with pytest.raises(CertificateRejected):  # a path-length-0 root may not have intermediates
        _validate(chain, trust_store=TEST_CA.trust_store)


@pytest.mark.parametrize(
    ("make", "kwargs"),
    [
        (lambda: DemoCA.generate("stranger").issue("x").leaf, {}),  # another CA
        (lambda: _leaf(TEST_CA, signer=ec.generate_private_key(ec.SECP256R1())), {}),  # forged
        (lambda: _leaf(TEST_CA, key_usage=_usage(key_encipherment=True)), {}),  # no signing
        (lambda: _leaf(TEST_CA, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), {}),  # wrong role
        (
            lambda: _leaf(TEST_CA, eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
            {"attester_is_server": False},
        ),
        (lambda: _leaf(TEST_CA, ca_flag=True), {}),  # a CA certificate as a leaf
        (lambda: _leaf(TEST_CA, not_after=NOW - datetime.timedelta(seconds=1)), {}),  # expired
        (lambda: _leaf(TEST_CA, not_before=NOW + datetime.timedelta(hours=1)), {}),  # not yet
        (lambda: TEST_CA.certificate, {}),  # the root itself
    ],
    ids=[
        "other-ca",
        "forged-signature",
        "key-usage-without-digital-signature",
        "eku-client-for-server",
        "eku-server-for-client",
        "leaf-is-a-ca",
        "expired",
        "not-yet-valid",
        "root-as-leaf",
    ],
)
def test_identity_b_rejections(make: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(CertificateRejected, match="trust store"):
        _validate([make()], trust_store=TEST_CA.trust_store, **kwargs)


def test_identity_b_uses_the_time_it_is_given() -> None:
    identity = TEST_CA.issue("short-lived", validity=datetime.timedelta(hours=1))
    store = TEST_CA.trust_store
    assert _validate(identity.chain, trust_store=store) is AuthenticatorIdentity.TRUST_STORE
    with pytest.raises(CertificateRejected):
        _validate(identity.chain, trust_store=store, now=NOW_TS + 2 * 3600)


def test_identity_c_only_on_opt_in() -> None:
    self_signed = generate_self_signed("p256", common_name="ephemeral")
    with pytest.raises(CertificateRejected, match="no trust store"):
        _validate(self_signed.chain)
    with pytest.raises(CertificateRejected, match="trust store"):
        _validate(self_signed.chain, trust_store=TEST_CA.trust_store)
    assert (
        _validate(self_signed.chain, accept_evidence_only=True)
        is AuthenticatorIdentity.EVIDENCE_ONLY
    )
    assert (
        _validate(self_signed.chain, accept_evidence_only=True, trust_store=TEST_CA.trust_store)
        is AuthenticatorIdentity.EVIDENCE_ONLY
    )


def test_identity_c_opt_in_warns_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pkix, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            attquic.AttestationConfiguration(
                verifier=simulated_verifier(), accept_evidence_only_identity=True
            )
        attquic.AttestationConfiguration(verifier=simulated_verifier())
    deviations = [w for w in caught if issubclass(w.category, EvidenceOnlyIdentityWarning)]
    assert len(deviations) == 1
    assert "§3.3" in str(deviations[0].message)


def test_trust_store_and_opt_in_are_relying_party_settings() -> None:
    for option in ({"trust_store": TEST_CA.trust_store}, {"accept_evidence_only_identity": True}):
        with pytest.raises(ConfigurationError, match="need a verifier"):
            attquic.AttestationConfiguration(attester=default_attester(), **option)
    with pytest.raises(ConfigurationError):
        pkix.TrustStore(())
    with pytest.raises(ConfigurationError):
        pkix.TrustStore.from_pem(b"not pem")
    assert pkix.TrustStore.from_pem(TEST_CA.trust_store.pem) == TEST_CA.trust_store


def test_attester_identity_defaults_to_the_tls_certificate() -> None:
    config = attestation(attester=default_attester())
    assert config.identity is None
    resolved = config.for_endpoint(server_tls())
    assert resolved.identity is not None and resolved.identity.leaf == TLS_IDENTITY.leaf
    # no TLS certificate: an ephemeral self-signed key, the same for every connection
    bare = QuicConfiguration(is_client=True)
    first, second = config.for_endpoint(bare), config.for_endpoint(bare)
    assert first.identity is not None and first.identity is second.identity
    assert first.identity.leaf.issuer == first.identity.leaf.subject
    explicit = attestation(attester=default_attester(), identity=CLIENT_IDENTITY)
    assert explicit.for_endpoint(server_tls()) is explicit


def test_demo_ca_is_the_same_in_every_process() -> None:
    """Server and client processes find the same demo CA with no file to share."""
    script = (
        "from attquic.demo_ca import DemoCA;"
        "print(DemoCA.default().certificate.public_key().public_numbers().x)"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    ours = DemoCA.default().certificate.public_key().public_numbers()  # type: ignore[union-attr]
    assert other == str(ours.x)
    issued = DemoCA.default().issue("x", ip_addresses=["127.0.0.1"])
    assert _validate(issued.chain, trust_store=DemoCA.default().trust_store) is (
        AuthenticatorIdentity.TRUST_STORE
    )


# --- X.509 validation over UDP -------------------------------------------------------------------


def _insecure_client_tls() -> QuicConfiguration:
    """A client that turned TLS certificate verification off (so identity (a) cannot apply)."""
    config = client_tls()
    config.verify_mode = ssl.CERT_NONE
    return config


async def _connect_and_echo(
    port: int,
    config: attquic.AttestationConfiguration,
    tls: QuicConfiguration | None = None,
    *,
    identity: AuthenticatorIdentity | None = None,
) -> bytes:
    async with attquic.connect(
        "127.0.0.1", port, configuration=tls or client_tls(), attestation=config
    ) as connection:
        if identity is not None:
            assert connection.peer_identity is identity
        return await echo_once(connection, b"x509")


async def _rejected(
    port: int, config: attquic.AttestationConfiguration, tls: QuicConfiguration | None = None
) -> attquic.ConnectionClosed:
    with pytest.raises(attquic.ConnectionClosed) as info:
        await _connect_and_echo(port, config, tls)
    return info.value


def _verifying(**kwargs: Any) -> attquic.AttestationConfiguration:
    """A client relying party with no trust store unless given one."""
    options: dict[str, Any] = {"trust_store": None, "attestation_timeout": 5.0, **kwargs}
    return attestation(verifier=simulated_verifier(), **options)


@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
async def test_udp_identity_a_by_default() -> None:
    """The server attests with its TLS certificate; the client, which verified it in TLS and has
    no trust store, accepts exactly that; with TLS verification off it refuses."""
    app = EchoApp()
    async with running_server(attestation(attester=default_attester()), app) as server:
        tls_identity = AuthenticatorIdentity.TLS_CERTIFICATE
        assert await _connect_and_echo(server.port, _verifying(), identity=tls_identity) == b"x509"
        closed = await _rejected(server.port, _verifying(), _insecure_client_tls())
        assert closed.code == CloseCode.CERTIFICATE_REJECTED and not closed.by_peer
        assert "TLS did not verify" in closed.reason
    assert app.received == [b"x509"]


@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
async def test_udp_identity_b_needs_the_trust_store() -> None:
    """The server authenticates with a CA-issued key that is not its TLS certificate."""
    other = TEST_CA.issue("attester key", client=False)
    app = EchoApp()
    config = attestation(attester=default_attester(), identity=other)
    async with running_server(config, app) as server:
        closed = await _rejected(server.port, _verifying())
        assert closed.code == CloseCode.CERTIFICATE_REJECTED
        assert "not the certificate TLS verified" in closed.reason
        trusting = _verifying(trust_store=TEST_CA.trust_store)
        store_identity = AuthenticatorIdentity.TRUST_STORE
        assert await _connect_and_echo(server.port, trusting, identity=store_identity) == b"x509"
        # (b) does not depend on TLS: it holds with TLS verification off too
        assert await _connect_and_echo(server.port, trusting, _insecure_client_tls()) == b"x509"
        # the relying party's clock decides validity: one day after the leaf expired
        late = other.leaf.not_valid_after_utc.timestamp() + 86400
        expired = _verifying(trust_store=TEST_CA.trust_store, clock=lambda: late)
        closed = await _rejected(server.port, expired)
        assert closed.code == CloseCode.CERTIFICATE_REJECTED and "trust store" in closed.reason
        stranger = _verifying(trust_store=DemoCA.generate("stranger").trust_store)
        assert (await _rejected(server.port, stranger)).code == CloseCode.CERTIFICATE_REJECTED
    assert app.received == [b"x509", b"x509"]


@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
@pytest.mark.filterwarnings("ignore::attquic.pkix.EvidenceOnlyIdentityWarning")
async def test_udp_identity_c_only_with_the_opt_in() -> None:
    """An ephemeral self-signed authenticator key, trusted only through the evidence."""
    ephemeral = generate_self_signed("p256", common_name="ephemeral attester")
    app = EchoApp()
    config = attestation(attester=default_attester(), identity=ephemeral)
    async with running_server(config, app) as server:
        closed = await _rejected(server.port, _verifying(trust_store=TEST_CA.trust_store))
        assert closed.code == CloseCode.CERTIFICATE_REJECTED
        opted_in = _verifying(accept_evidence_only_identity=True)
        evidence_only = AuthenticatorIdentity.EVIDENCE_ONLY
        assert await _connect_and_echo(server.port, opted_in, identity=evidence_only) == b"x509"
    assert app.received == [b"x509"]


@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
async def test_udp_mutual_client_identity_is_checked_by_the_server() -> None:
    """aioquic servers never verify client TLS certificates, so the client's authenticator is
    identity (b) at best: the server's trust store decides."""
    app = EchoApp()
    server_config = attestation(
        attester=default_attester(), verifier=simulated_verifier(), attestation_timeout=5.0
    )
    async with running_server(server_config, app) as server:
        client = _verifying(attester=default_attester())  # its TLS certificate: CLIENT_IDENTITY
        assert await _connect_and_echo(server.port, client) == b"x509"
        bare_tls = client_tls()
        bare_tls.certificate = bare_tls.private_key = None  # no certificate: ephemeral key
        closed = await _rejected(server.port, client, bare_tls)
        assert closed.code == CloseCode.CERTIFICATE_REJECTED and closed.by_peer
    assert app.received == [b"x509"]


# --- re-attestation: same key and measurements as the first, unless allowed -----------------------


@dataclasses.dataclass(frozen=True)
class _Measured(HardwareAttestation):
    """A stand-in hardware result with TDX-named measurements."""

    mrtd: bytes = bytes(48)
    rtmrs: tuple[bytes, ...] = (bytes(48),) * 4
    mrconfigid: bytes = bytes(48)


def _measured_check(results: list[_Measured]) -> Any:
    """A verifier stand-in: checks the binding, then returns the next result of ``results``."""

    def check(cmw: Any, binding: Binding, now: float) -> AttestationResult:
        check_fake_evidence(cmw, binding, now)
        return results.pop(0)

    return check


def _reattest_in_memory(
    second: _Measured, *, allow: Any = False, new_key: bool = False
) -> tuple[Side, Side]:
    client, server = session_pair()
    if allow is not False:
        client.session._config = dataclasses.replace(
            client.session._config, allow_attestation_change=allow
        )
    first = _Measured(verified_at=1.0, media_type="t", evidence=b"")
    client.check = _measured_check([first, second])
    run_sessions(client, server)
    assert client.session.gate_open and client.closed is None
    if new_key:
        server.session._config = dataclasses.replace(
            server.session._config, identity=CLIENT_IDENTITY
        )
    client.session.request_attestation(2.0)
    run_sessions(client, server, now=2.0)
    return client, server


def test_reattestation_with_the_same_key_and_measurements_passes() -> None:
    same = _Measured(verified_at=2.0, media_type="t", evidence=b"other quote bytes")
    client, _ = _reattest_in_memory(same)
    assert client.closed is None and len(client.attested) == 2
    assert client.session.peer_result is same


@pytest.mark.parametrize(
    ("second", "new_key", "named"),
    [
        (
            _Measured(verified_at=2.0, media_type="t", evidence=b"", mrtd=b"\x01" * 48),
            False,
            "mrtd",
        ),
        (
            _Measured(
                verified_at=2.0,
                media_type="t",
                evidence=b"",
                rtmrs=(bytes(48),) * 2 + (b"\x02" * 48, bytes(48)),
            ),
            False,
            "rtmrs[2]",
        ),
        (
            _Measured(verified_at=2.0, media_type="t", evidence=b"", mrconfigid=b"\x03" * 48),
            False,
            "mrconfigid",
        ),
        (_Measured(verified_at=2.0, media_type="u", evidence=b""), False, "media type"),
        (_Measured(verified_at=2.0, media_type="t", evidence=b""), True, "authenticator key"),
    ],
    ids=["mrtd", "rtmr2", "mrconfigid", "media-type", "key"],
)
def test_reattestation_change_is_policy_rejected(
    second: _Measured, new_key: bool, named: str
) -> None:
    client, _ = _reattest_in_memory(second, new_key=new_key)
    assert client.closed is not None and client.closed.code is CloseCode.POLICY_REJECTED
    assert named in client.closed.reason
    assert client.session.peer_result is not second  # the changed result is never published


def test_reattestation_change_allowed_by_setting_or_callback() -> None:
    changed = _Measured(verified_at=2.0, media_type="t", evidence=b"", mrtd=b"\x01" * 48)
    client, _ = _reattest_in_memory(changed, allow=True)
    assert client.closed is None and client.session.peer_result is changed

    seen: list[AttestationChange] = []

    def only_rtmrs(change: AttestationChange) -> bool:
        seen.append(change)
        return all(name.startswith("rtmrs[") for name in change.changed)

    client, _ = _reattest_in_memory(changed, allow=only_rtmrs, new_key=True)
    assert client.closed is not None and client.closed.code is CloseCode.POLICY_REJECTED
    (change,) = seen
    assert change.key_changed and change.changed == ("authenticator key", "mrtd")
    assert change.current is changed and change.previous.verified_at == 1.0

    rtmr_only = _Measured(
        verified_at=2.0, media_type="t", evidence=b"", rtmrs=(b"\x09" * 48,) + (bytes(48),) * 3
    )
    client, _ = _reattest_in_memory(rtmr_only, allow=only_rtmrs)
    assert client.closed is None and client.session.peer_result is rtmr_only


def test_a_failing_change_callback_fails_closed() -> None:
    def broken(change: AttestationChange) -> bool:
        raise RuntimeError("application bug")

    changed = _Measured(verified_at=2.0, media_type="t", evidence=b"", mrtd=b"\x01" * 48)
    client, _ = _reattest_in_memory(changed, allow=broken)
    assert client.closed is not None and client.closed.code is CloseCode.POLICY_REJECTED
    assert "callback failed" in client.closed.reason


def test_measurements_of_an_ear_result() -> None:
    result = IssuerAssertion(verified_at=1.0, media_type="m", token=b"t", issuer="verifier A")
    named = measurements(result)
    assert named["issuer"] == "verifier A" and named["result type"] == "IssuerAssertion"
    other = IssuerAssertion(verified_at=2.0, media_type="m", token=b"u", issuer="verifier B")
    change = compare_attestations(result, other, previous_key=b"k", current_key=b"k")
    assert change is not None and change.changed == ("issuer",)
    same = IssuerAssertion(verified_at=3.0, media_type="m", token=b"v", issuer="verifier A")
    assert compare_attestations(result, same, previous_key=b"k", current_key=b"k") is None


class _SwitchingAttester:
    """Honest evidence, but from a TD whose RTMR2 differs after the first quote."""

    def __init__(self) -> None:
        rtmrs = list(DEFAULT_MEASUREMENTS.rtmrs)
        rtmrs[2] = b"\x5a" * 48
        self._first, self._later = default_attester(), default_attester(rtmrs=rtmrs)
        self.calls = 0

    async def attest(self, binding: Binding) -> Any:
        self.calls += 1
        source = self._first if self.calls == 1 else self._later
        return await source.attest(binding)


@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
async def test_udp_reattestation_with_other_measurements() -> None:
    """The policy accepts either RTMR2 (it does not pin it), yet the change on a live
    connection is refused unless the relying party allows it."""
    for allow in (False, True):
        app = EchoApp()
        config = attestation(attester=_SwitchingAttester(), attestation_timeout=5.0)
        async with running_server(config, app) as server:
            client = _verifying(allow_attestation_change=allow)
            async with connect_local(server.port, client) as connection:
                assert await echo_once(connection, b"before") == b"before"
                if allow:
                    result = await connection.reattest()
                    assert result.rtmrs[2] == b"\x5a" * 48  # type: ignore[attr-defined]
                    assert await echo_once(connection, b"after") == b"after"
                else:
                    with pytest.raises(attquic.ConnectionClosed) as info:
                        await connection.reattest()
                    assert info.value.code == CloseCode.POLICY_REJECTED
                    assert "rtmrs[2]" in info.value.reason
        assert app.received == ([b"before", b"after"] if allow else [b"before"])


@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")
async def test_udp_reattestation_with_another_key() -> None:
    """A server that re-attests with another (valid, trusted) key and genuine evidence for it."""
    other_key = TEST_CA.issue("second key", client=False)
    genuine = default_attester()

    async def script(peer: HostilePeer) -> None:
        await peer.next_frame(frames.SetupFrame)
        peer.send_control(frames.SetupFrame(2, requests_attestation=False, attests=True))
        identities = iter([TLS_IDENTITY, other_key])
        while True:
            frame = await peer.next_frame()
            if not isinstance(frame, frames.AuthenticatorRequestFrame):
                continue  # the client's RESULT
            request = AuthenticatorRequest.decode(frame.request)
            answer = await genuine_authenticator(peer, request, genuine, next(identities))
            peer.send_control(frames.AuthenticatorFrame(answer))

    async with hostile_server(script) as (port, peers):
        client = _verifying(trust_store=TEST_CA.trust_store)
        async with connect_local(port, client) as connection:
            with pytest.raises(attquic.ConnectionClosed) as info:
                await connection.reattest()
        assert info.value.code == CloseCode.POLICY_REJECTED
        assert "authenticator key" in info.value.reason
        assert await peers[0].close_code() == CloseCode.POLICY_REJECTED


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_a_mutated_authenticator_certificate_fails_closed(position: int, flip: int) -> None:
    """Any byte of a trusted leaf changed: either the DER no longer parses, or validation
    rejects it with CertificateRejected (never another exception), or the signed part is intact."""
    identity = _MUTATION_BASE
    der = bytearray(identity.leaf.public_bytes(serialization.Encoding.DER))
    der[position % len(der)] ^= flip
    try:
        mutated = x509.load_der_x509_certificate(bytes(der))
    except Exception:  # the RFC 9261 layer turns any parse failure into EADecodeError
        return
    for kwargs in (
        {"trust_store": TEST_CA.trust_store},
        {"tls_certificate": mutated, "tls_verified": True},
    ):
        try:
            _validate([mutated], **kwargs)
        except CertificateRejected:
            continue
        if "trust_store" in kwargs:
            assert mutated.tbs_certificate_bytes == identity.leaf.tbs_certificate_bytes


_MUTATION_BASE = TEST_CA.issue("mutation base", client=False)


def test_attesters_and_verifiers_use_the_profile_media_types() -> None:
    """The media types the profile object names are the ones the evidence code uses."""
    from attquic.tdx import verifier as tdx_verifier
    from attquic.verifier_service import evidence

    assert ATTQUIC_2.tdx_quote_media_type == profile.TDX_QUOTE_MEDIA_TYPE
    assert ATTQUIC_2.tdx_quote_media_type == tdx_verifier.TDX_QUOTE_MEDIA_TYPE
    assert ATTQUIC_2.tdx_quote_media_type in evidence.EVIDENCE_MEDIA_TYPES
    binding = Binding("sha256", bytes(32), bytes(32))
    record = asyncio.run(default_attester().attest(binding))
    assert record.type == ATTQUIC_2.tdx_quote_media_type
    assert ATTQUIC_2.passport_media_type == profile.EAR_JWT_MEDIA_TYPE
