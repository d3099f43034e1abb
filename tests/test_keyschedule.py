"""attquic.keyschedule against RFC 8448 §3, aioquic's own HKDF, and the capture rule.

The RFC 8448 "Simple 1-RTT Handshake" is replayed through aioquic's ``KeySchedule`` in the order
aioquic's ``tls.Context`` drives it, to show that the hook's capture point (the first 1-RTT key
install) sees exactly the RFC's exporter master secret, and that a later point does not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aioquic import tls
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st

from attquic import profile
from attquic.keyschedule import (
    Binding,
    ExporterSecret,
    derive_secret,
    hash_algorithm,
    hkdf_expand,
    hkdf_expand_label,
    tls_exporter,
)
from attquic.quic import ExporterCapture

SHA256 = hash_algorithm("sha256")


@pytest.fixture(scope="module")
def rfc8448(vectors_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((vectors_dir / "tls13" / "rfc8448.json").read_text())
    return data


def hx(value: str) -> bytes:
    return bytes.fromhex(value)


# --- attquic.keyschedule against the RFC values ----------------------------------------------


def test_exporter_master_secret_from_master_secret(rfc8448: dict[str, Any]) -> None:
    secrets = rfc8448["secrets"]
    ch_sf = hx(rfc8448["transcript_hashes"]["ch_sf"])
    master = hx(secrets["master_secret"])
    assert derive_secret(SHA256, master, b"exp master", ch_sf) == hx(
        secrets["exporter_master_secret"]
    )
    # The same helper reproduces the published neighbours, so the vector is self-consistent.
    assert derive_secret(SHA256, master, b"s ap traffic", ch_sf) == hx(
        secrets["server_application_traffic_secret_0"]
    )
    assert derive_secret(SHA256, master, b"c ap traffic", ch_sf) == hx(
        secrets["client_application_traffic_secret_0"]
    )


def test_transcript_hash_of_the_messages(rfc8448: dict[str, Any]) -> None:
    messages = rfc8448["handshake_messages"]
    order = [
        "client_hello",
        "server_hello",
        "encrypted_extensions",
        "certificate",
        "certificate_verify",
        "server_finished",
    ]
    transcript = b"".join(hx(messages[name]) for name in order)
    assert hashlib.sha256(transcript).digest() == hx(rfc8448["transcript_hashes"]["ch_sf"])


def test_derived_rfc9261_exporters(rfc8448: dict[str, Any]) -> None:
    exporter = ExporterSecret("sha256", hx(rfc8448["secrets"]["exporter_master_secret"]))
    values = rfc8448["derived_exporters"]["values"]
    assert {v["label"].encode() for v in values} == {
        profile.LABEL_CLIENT_HANDSHAKE_CONTEXT,
        profile.LABEL_SERVER_HANDSHAKE_CONTEXT,
        profile.LABEL_CLIENT_FINISHED_KEY,
        profile.LABEL_SERVER_FINISHED_KEY,
    }
    for value in values:
        got = exporter.export_keying_material(
            value["label"].encode(), hx(value["context_hex"]), value["length"]
        )
        assert got == hx(value["value_hex"]), value["label"]


def test_traffic_keys_from_the_rfc_secrets(rfc8448: dict[str, Any]) -> None:
    secrets, keys = rfc8448["secrets"], rfc8448["traffic_keys"]
    for direction in ("server", "client"):
        for stage, secret_name in (
            ("handshake", f"{direction}_handshake_traffic_secret"),
            ("application", f"{direction}_application_traffic_secret_0"),
        ):
            secret = hx(secrets[secret_name])
            assert hkdf_expand_label(SHA256, secret, b"key", b"", 16) == hx(
                keys[f"{direction}_{stage}_key"]
            )
            assert hkdf_expand_label(SHA256, secret, b"iv", b"", 12) == hx(
                keys[f"{direction}_{stage}_iv"]
            )


# --- the same HKDF as aioquic --------------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@settings(max_examples=100, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=64),
    label=st.binary(max_size=200),
    context=st.binary(max_size=48),
    length=st.integers(min_value=1, max_value=255),
)
def test_hkdf_expand_label_equals_aioquic(
    hash_name: str, secret: bytes, label: bytes, context: bytes, length: int
) -> None:
    algorithm = hash_algorithm(hash_name)
    theirs = tls.hkdf_expand_label(
        algorithm=algorithm, secret=secret, label=label, hash_value=context, length=length
    )
    assert hkdf_expand_label(algorithm, secret, label, context, length) == theirs


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@settings(max_examples=100, deadline=None)
@given(
    prk=st.binary(max_size=80),
    info=st.binary(max_size=300),
    length=st.integers(min_value=1, max_value=255 * 48),
)
def test_hkdf_expand_equals_cryptography(
    hash_name: str, prk: bytes, info: bytes, length: int
) -> None:
    algorithm = hash_algorithm(hash_name)
    if length > 255 * algorithm.digest_size:
        with pytest.raises(ValueError, match="length"):
            hkdf_expand(hash_name, prk, info, length)
        return
    theirs = HKDFExpand(algorithm=algorithm, length=length, info=info).derive(prk)
    assert hkdf_expand(hash_name, prk, info, length) == theirs


def test_hkdf_expand_rejects_empty_output() -> None:
    with pytest.raises(ValueError, match="length"):
        hkdf_expand("sha256", bytes(32), b"", 0)


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@settings(max_examples=100, deadline=None)
@given(
    key=st.binary(max_size=200),
    messages=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
)
def test_hmac_key_equals_stdlib_hmac(hash_name: str, key: bytes, messages: list[bytes]) -> None:
    """The keyed-once HMAC gives the one-shot HMAC's bytes for every message under one key
    (keys longer than the hash block included): copying never carries one message into the next."""
    import hmac

    from attquic.keyschedule import _HmacKey

    mac = _HmacKey(key, hash_name)
    for message in messages:
        assert mac.digest(message) == hmac.digest(key, message, hash_name)


@pytest.mark.parametrize(("hash_name", "size"), [("sha256", 32), ("sha384", 48)])
@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    exports=st.lists(
        st.tuples(
            st.binary(max_size=60), st.binary(max_size=80), st.integers(min_value=1, max_value=600)
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_exporter_equals_aioquic_hkdf(
    hash_name: str, size: int, data: st.DataObject, exports: list[tuple[bytes, bytes, int]]
) -> None:
    """ExporterSecret's fast path (the secret's HMAC kept across exports) is RFC 8446 §7.5
    computed with aioquic's HKDF, for every export of one secret and of another secret."""
    algorithm = hash_algorithm(hash_name)
    for secret in (data.draw(st.binary(min_size=size, max_size=size)), bytes(size)):
        exporter = ExporterSecret(hash_name, secret)
        for label, context, length in exports:
            per_label = tls.hkdf_expand_label(
                algorithm, secret, label, hashlib.new(hash_name).digest(), size
            )
            expected = tls.hkdf_expand_label(
                algorithm, per_label, b"exporter", hashlib.new(hash_name, context).digest(), length
            )
            assert exporter.export_keying_material(label, context, length) == expected
            assert tls_exporter(algorithm, secret, label, context, length) == expected


# --- exporter edge cases ---------------------------------------------------------------------


@pytest.mark.parametrize(("hash_name", "size"), [("sha256", 32), ("sha384", 48)])
def test_exporter_lengths(hash_name: str, size: int) -> None:
    exporter = ExporterSecret(hash_name, bytes(range(size)))
    assert len(exporter.export_keying_material(b"EXPORTER-x", b"", 255 * size)) == 255 * size
    for bad in (0, -1, 255 * size + 1):
        with pytest.raises(ValueError, match="length"):
            exporter.export_keying_material(b"EXPORTER-x", b"", bad)


def test_exporter_context_is_hashed_not_absent() -> None:
    exporter = ExporterSecret("sha256", bytes(32))
    empty = exporter.export_keying_material(b"EXPORTER-x", b"", 32)
    assert exporter.export_keying_material(b"EXPORTER-x", b"\x00", 32) != empty
    # RFC 8446 §7.5: the context goes in as Hash(context); an empty one is Hash("").
    per_label = derive_secret(SHA256, bytes(32), b"EXPORTER-x", hashlib.sha256().digest())
    expected = hkdf_expand_label(SHA256, per_label, b"exporter", hashlib.sha256().digest(), 32)
    assert empty == expected == tls_exporter(SHA256, bytes(32), b"EXPORTER-x", b"", 32)


def test_exporter_secret_validation_and_repr() -> None:
    with pytest.raises(ValueError):
        ExporterSecret("sha256", bytes(48))
    with pytest.raises(ValueError):
        ExporterSecret("sha384", bytes(32))
    with pytest.raises(ValueError):
        ExporterSecret("md5", bytes(16))
    secret = ExporterSecret("sha256", bytes.fromhex("ab" * 32))
    assert "ab" not in repr(secret)
    assert secret.algorithm.name == "sha256"


# --- the binder --------------------------------------------------------------------------------


@pytest.mark.parametrize(("hash_name", "size"), [("sha256", 32), ("sha384", 48)])
def test_binding_layout(hash_name: str, size: int) -> None:
    exporter = ExporterSecret(hash_name, bytes(range(size)))
    context = bytes(range(100, 132))
    spki = b"\x30\x59" + bytes(89)  # any DER bytes: the binder hashes them opaquely
    binding = Binding.compute(exporter, context, spki)

    exported = exporter.export_keying_material(b"EXPORTER-cmw-attestation", context, 32)
    expected_binding = hashlib.new(hash_name, spki + exported).digest()
    expected_aik = hashlib.new(hash_name, spki).digest()
    assert binding == Binding(hash_name, expected_binding, expected_aik)
    assert len(binding.binding) == size
    assert binding.report_data == hashlib.sha512(expected_binding + expected_aik).digest()
    assert len(binding.report_data) == 64

    assert binding.matches_report_data(binding.report_data)
    assert not binding.matches_report_data(bytes(64))
    assert not binding.matches_report_data(binding.report_data[:32])
    assert binding.matches_nonce(expected_binding)
    assert not binding.matches_nonce(expected_aik)

    # Every input matters: another context, key, or connection gives another binding.
    assert Binding.compute(exporter, bytes(32), spki).binding != binding.binding
    assert Binding.compute(exporter, context, spki + b"\x00").binding != binding.binding
    other = ExporterSecret(hash_name, bytes(size))
    assert Binding.compute(other, context, spki).binding != binding.binding


@pytest.mark.parametrize(("hash_name", "size"), [("sha256", 32), ("sha384", 48)])
def test_legacy_profile_binds_with_the_expat_03_label(hash_name: str, size: int) -> None:
    exporter = ExporterSecret(hash_name, bytes(range(size)))
    context, spki = bytes(range(32)), b"\x30\x03\x01\x02\x03"
    legacy = Binding.compute(
        exporter, context, spki, wire_profile=profile.ATTQUIC_2_LEGACY_EXPAT_03
    )
    exported = exporter.export_keying_material(b"Attestation", context, 32)
    assert legacy.binding == hashlib.new(hash_name, spki + exported).digest()
    assert legacy.aik_pub_hash == Binding.compute(exporter, context, spki).aik_pub_hash
    # the label is the only difference, and it changes the binding
    assert legacy.binding != Binding.compute(exporter, context, spki).binding


# --- RFC 8448 replayed through aioquic's KeySchedule -----------------------------------------


def replay_to_first_one_rtt_key(rfc8448: dict[str, Any]) -> tuple[tls.KeySchedule, bytes]:
    """Drive aioquic's KeySchedule as tls.Context does, up to "s ap traffic".

    Returns the schedule and the secret tls.Context would install as the first 1-RTT key.
    """
    messages = {name: hx(value) for name, value in rfc8448["handshake_messages"].items()}
    secrets = rfc8448["secrets"]
    schedule = tls.KeySchedule(tls.CipherSuite.AES_128_GCM_SHA256)
    schedule.extract(None)  # early secret, no PSK
    assert schedule.secret == hx(secrets["early_secret"])
    schedule.update_hash(messages["client_hello"])
    schedule.update_hash(messages["server_hello"])
    schedule.extract(hx(rfc8448["x25519"]["ecdhe_shared_secret"]))
    assert schedule.secret == hx(secrets["handshake_secret"])
    assert schedule.derive_secret(b"s hs traffic") == hx(secrets["server_handshake_traffic_secret"])
    assert schedule.derive_secret(b"c hs traffic") == hx(secrets["client_handshake_traffic_secret"])
    for name in ("encrypted_extensions", "certificate", "certificate_verify", "server_finished"):
        schedule.update_hash(messages[name])
    schedule.extract(None)
    assert schedule.generation == 3
    assert schedule.secret == hx(secrets["master_secret"])
    s_ap_traffic = schedule.derive_secret(b"s ap traffic")
    assert s_ap_traffic == hx(secrets["server_application_traffic_secret_0"])
    return schedule, s_ap_traffic


def capture_on(schedule: tls.KeySchedule, *, is_client: bool) -> ExporterCapture:
    context = tls.Context(is_client=is_client)
    context.key_schedule = schedule
    return ExporterCapture.attach_to_tls(context, is_client=is_client)


@pytest.mark.parametrize("is_client", [True, False])
def test_capture_point_gives_the_rfc_exporter_master_secret(
    rfc8448: dict[str, Any], is_client: bool
) -> None:
    schedule, s_ap_traffic = replay_to_first_one_rtt_key(rfc8448)
    installed: list[tuple[tls.Direction, tls.Epoch, bytes]] = []
    context = tls.Context(is_client=is_client)
    context.key_schedule = schedule
    context.update_traffic_key_cb = lambda d, e, c, s: installed.append((d, e, s))
    capture = ExporterCapture.attach_to_tls(context, is_client=is_client)
    direction = tls.Direction.DECRYPT if is_client else tls.Direction.ENCRYPT
    suite = tls.CipherSuite.AES_128_GCM_SHA256

    context.update_traffic_key_cb(tls.Direction.ENCRYPT, tls.Epoch.HANDSHAKE, suite, bytes(32))
    assert not capture.captured  # handshake keys are not the capture point
    context.update_traffic_key_cb(direction, tls.Epoch.ONE_RTT, suite, s_ap_traffic)

    assert capture.captured
    assert capture.exporter.secret == hx(rfc8448["secrets"]["exporter_master_secret"])
    assert capture.hash_name == "sha256"
    assert capture.cipher_suite == suite
    # The original callback still ran, after the capture, with the same arguments.
    assert [i[1] for i in installed] == [tls.Epoch.HANDSHAKE, tls.Epoch.ONE_RTT]
    assert installed[1] == (direction, tls.Epoch.ONE_RTT, s_ap_traffic)
    # Later 1-RTT installs (the other direction) neither re-capture nor fail.
    schedule.update_hash(hx(rfc8448["handshake_messages"]["client_finished"]))
    other = tls.Direction.ENCRYPT if is_client else tls.Direction.DECRYPT
    context.update_traffic_key_cb(other, tls.Epoch.ONE_RTT, suite, bytes(32))
    assert capture.exporter.secret == hx(rfc8448["secrets"]["exporter_master_secret"])


def test_deriving_after_the_handshake_is_wrong(rfc8448: dict[str, Any]) -> None:
    """Why the capture point matters: the transcript moves on past server Finished."""
    schedule, _ = replay_to_first_one_rtt_key(rfc8448)
    schedule.update_hash(hx(rfc8448["handshake_messages"]["client_finished"]))
    assert schedule.hash.copy().finalize() == hx(rfc8448["transcript_hashes"]["ch_cf"])
    assert schedule.derive_secret(b"exp master") != hx(rfc8448["secrets"]["exporter_master_secret"])


@pytest.mark.parametrize(
    "drift", ["transcript_advanced", "wrong_direction", "wrong_generation", "wrong_suite"]
)
def test_capture_fails_closed_when_the_schedule_drifts(rfc8448: dict[str, Any], drift: str) -> None:
    schedule, s_ap_traffic = replay_to_first_one_rtt_key(rfc8448)
    direction = tls.Direction.DECRYPT
    suite = tls.CipherSuite.AES_128_GCM_SHA256
    if drift == "transcript_advanced":
        schedule.update_hash(hx(rfc8448["handshake_messages"]["client_finished"]))
    elif drift == "wrong_direction":
        direction = tls.Direction.ENCRYPT
    elif drift == "wrong_generation":
        schedule.generation = 4
    else:
        suite = tls.CipherSuite.CHACHA20_POLY1305_SHA256
    capture = capture_on(schedule, is_client=True)
    calls: list[bytes] = []
    callback = capture.wrap(lambda d, e, c, s: calls.append(s))

    with pytest.raises(tls.AlertInternalError):
        callback(direction, tls.Epoch.ONE_RTT, suite, s_ap_traffic)
    assert calls == []  # the key was never installed
    assert not capture.captured
    assert capture.failure is not None


def test_capture_fails_closed_without_a_negotiated_schedule() -> None:
    context = tls.Context(is_client=True)  # key_schedule not yet created
    capture = ExporterCapture.attach_to_tls(context, is_client=True)
    with pytest.raises(tls.AlertInternalError):
        context.update_traffic_key_cb(
            tls.Direction.DECRYPT, tls.Epoch.ONE_RTT, tls.CipherSuite.AES_128_GCM_SHA256, bytes(32)
        )
    assert not capture.captured
