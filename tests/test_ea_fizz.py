"""Replay Fizz's RFC 9261 vectors (tests/data/vectors/ea/fizz.json) byte for byte.

Fizz deviations handled here (see the vector file's notes):
* its request is the bare CertificateRequest body (no 4-byte header), and that body is what its
  transcripts hash, so the stateless functions get the headerless bytes;
* AuthenticatorTest's Certificate and signature are mocks (empty list, signature "signature");
* hc/fk are 32 ASCII bytes in AuthenticatorTest but unhexlify()'d to 16 bytes in
  ValidateAuthenticatorTest;
* TestGetContext's CertificateVerify uses the pre-RFC label, so only its Finished is valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attquic import profile
from attquic.ea.authenticator import (
    AuthenticatorKeys,
    build_empty_authenticator,
    certificate_verify_content,
    check_authenticator,
    finished_verify_data,
)
from attquic.ea.identity import spki_der
from attquic.ea.messages import (
    Authenticator,
    AuthenticatorRequest,
    CertificateMessage,
    CertificateVerifyMessage,
    FinishedMessage,
)
from attquic.ea.schemes import ECDSA_SECP256R1_SHA256, verify
from attquic.errors import (
    AuthenticatorError,
    BadSignature,
    ConfigurationError,
    EADecodeError,
    EmptyCertificateList,
    RefusedAuthenticator,
)

PRE_RFC_LABEL = b"TLS 1.3, server CertificateVerify"


@pytest.fixture(scope="module")
def fizz(vectors_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((vectors_dir / "ea" / "fizz.json").read_text())
    assert data["hash"] == "SHA-256"
    return data


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def keys_of(vector: dict[str, Any]) -> AuthenticatorKeys:
    return AuthenticatorKeys(
        "sha256", h(vector["handshake_context_hex"]), h(vector["finished_key_hex"])
    )


def fizz_request(body_hex: str) -> AuthenticatorRequest:
    return AuthenticatorRequest.decode(h(body_hex), with_header=False)


def check(vector: dict[str, Any], authenticator: bytes) -> None:
    """check_authenticator with Fizz's transcript (headerless request)."""
    request = fizz_request(vector["authenticator_request_hex"])
    check_authenticator(
        authenticator,
        keys=keys_of(vector),
        request=request,
        request_bytes=request.encode_body(),
        offered_extensions=request.extension_types,
        offered_schemes=request.signature_schemes,
    )


class TestAuthenticator:
    def test_request_decodes_and_reencodes(self, fizz: dict[str, Any]) -> None:
        vector = fizz["authenticator_test"]
        request = fizz_request(vector["authenticator_request_hex"])
        assert request.msg_type == profile.HS_CERTIFICATE_REQUEST
        assert request.context == vector["certificate_request_context_ascii"].encode()
        assert request.signature_schemes == (ECDSA_SECP256R1_SHA256,)
        assert request.encode_body().hex() == vector["authenticator_request_hex"]
        assert request.encode().hex() == vector["authenticator_request_with_header_hex"]
        assert AuthenticatorRequest.decode(request.encode()) == request

    def test_messages_decode_and_reencode(self, fizz: dict[str, Any]) -> None:
        vector = fizz["authenticator_test"]
        certificate = CertificateMessage.decode(h(vector["certificate_msg_hex"]))
        assert certificate == CertificateMessage(b"", ())
        assert certificate.encode().hex() == vector["certificate_msg_hex"]
        certificate_verify = CertificateVerifyMessage.decode(
            h(vector["certificate_verify_msg_hex"])
        )
        assert certificate_verify.scheme == ECDSA_SECP256R1_SHA256
        assert certificate_verify.signature == vector["certificate_verify_signature_ascii"].encode()
        assert certificate_verify.encode().hex() == vector["certificate_verify_msg_hex"]
        finished = FinishedMessage.decode(h(vector["finished_msg_hex"]), hash_length=32)
        assert finished.verify_data.hex() == vector["finished_verify_data_hex"]

    def test_finished_reproduces(self, fizz: dict[str, Any]) -> None:
        vector = fizz["authenticator_test"]
        assert vector["handshake_context_hex"] == vector["handshake_context_ascii"].encode().hex()
        verify_data = finished_verify_data(
            "sha256",
            h(vector["finished_key_hex"]),
            h(vector["handshake_context_hex"]),
            h(vector["authenticator_request_hex"]),
            h(vector["certificate_msg_hex"]),
            h(vector["certificate_verify_msg_hex"]),
        )
        assert verify_data.hex() == vector["finished_verify_data_hex"]
        built = (
            h(vector["certificate_msg_hex"])
            + h(vector["certificate_verify_msg_hex"])
            + FinishedMessage(verify_data).encode()
        )
        assert built.hex() == vector["expected_authenticator_hex"]

    def test_rfc_header_does_not_reproduce_fizz(self, fizz: dict[str, Any]) -> None:
        vector = fizz["authenticator_test"]
        verify_data = finished_verify_data(
            "sha256",
            h(vector["finished_key_hex"]),
            h(vector["handshake_context_hex"]),
            h(vector["authenticator_request_with_header_hex"]),
            h(vector["certificate_msg_hex"]),
            h(vector["certificate_verify_msg_hex"]),
        )
        assert verify_data.hex() != vector["finished_verify_data_hex"]

    def test_authenticator_decodes(self, fizz: dict[str, Any]) -> None:
        vector = fizz["authenticator_test"]
        data = h(vector["expected_authenticator_hex"])
        authenticator = Authenticator.decode(data, hash_length=32)
        assert not authenticator.is_empty
        assert authenticator.encode() == data

    def test_mock_authenticator_is_rejected(self, fizz: dict[str, Any]) -> None:
        # Structurally not RFC 9261: signed Certificate with an empty certificate_list.
        vector = fizz["authenticator_test"]
        with pytest.raises(EmptyCertificateList):
            check(vector, h(vector["expected_authenticator_hex"]))


class TestEmptyAuthenticator:
    def test_implicit_certificate(self, fizz: dict[str, Any]) -> None:
        vector = fizz["empty_authenticator_test"]
        request = fizz_request(vector["authenticator_request_hex"])
        implicit = CertificateMessage(request.context, ()).encode()
        assert implicit.hex() == vector["implicit_empty_certificate_msg_hex"]

    def test_reproduces(self, fizz: dict[str, Any]) -> None:
        vector = fizz["empty_authenticator_test"]
        request = fizz_request(vector["authenticator_request_hex"])
        built = build_empty_authenticator(keys_of(vector), request.encode_body(), request.context)
        assert built.hex() == vector["expected_empty_authenticator_hex"]

    def test_validates_as_refusal(self, fizz: dict[str, Any]) -> None:
        vector = fizz["empty_authenticator_test"]
        data = h(vector["expected_empty_authenticator_hex"])
        assert Authenticator.decode(data, hash_length=32).is_empty
        with pytest.raises(RefusedAuthenticator):
            check(vector, data)


class TestAuthenticatorRequest:
    def test_decodes_and_reencodes(self, fizz: dict[str, Any]) -> None:
        vector = fizz["authenticator_request_test"]
        decoded = vector["decoded"]
        request = fizz_request(vector["expected_auth_request_hex"])
        assert request.context.hex() == decoded["certificate_request_context_hex"]
        assert [(e.type, e.data.hex()) for e in request.extensions] == [
            (x["extension_type"], x["extension_data_hex"]) for x in decoded["extensions"]
        ]
        assert request.extension(profile.EXT_SIGNATURE_ALGORITHMS) is not None
        assert [f"0x{s:04x}" for s in request.signature_schemes] == [
            name.split()[0] for name in decoded["extensions"][0]["signature_schemes"]
        ]
        assert request.encode_body().hex() == vector["expected_auth_request_hex"]

    def test_empty_context_without_extensions_rejected(self, fizz: dict[str, Any]) -> None:
        vector = fizz["empty_context_request_rejected"]
        assert vector["valid"] is False
        context = h(vector["certificate_request_context_hex"])
        with pytest.raises(ConfigurationError):
            AuthenticatorRequest(
                profile.HS_CERTIFICATE_REQUEST, context, tuple(vector["extensions"])
            )
        # The same request on the wire: empty context, empty extension list.
        with pytest.raises(EADecodeError):
            AuthenticatorRequest.decode(b"\x00\x00\x00", with_header=False)


class TestGetContext:
    """status finished_only_valid: the Finished is right, the signature uses the pre-RFC label."""

    def test_structure(self, fizz: dict[str, Any]) -> None:
        vector = fizz["get_context_authenticator"]
        assert vector["status"] == "finished_only_valid"
        data = h(vector["authenticator_hex"])
        authenticator = Authenticator.decode(data, hash_length=32)
        assert authenticator.encode() == data
        assert authenticator.certificate is not None
        assert authenticator.certificate.encode().hex() == vector["certificate_msg_hex"]
        assert (
            authenticator.certificate.context.hex()
            == vector["expected_certificate_request_context_hex"]
        )
        [entry] = authenticator.certificate.entries
        assert entry.cert_data.hex() == vector["leaf_certificate_der_hex"]
        assert entry.cert_data.hex() == fizz["expected_cert"]["certificate_der_hex"]
        assert authenticator.certificate_verify is not None
        assert (
            authenticator.certificate_verify.encode().hex() == vector["certificate_verify_msg_hex"]
        )
        assert authenticator.finished.encode().hex() == vector["finished_msg_hex"]

    def test_finished_valid(self, fizz: dict[str, Any]) -> None:
        vector = fizz["get_context_authenticator"]
        finished_check = vector["finished_check"]
        verify_data = finished_verify_data(
            "sha256",
            h(finished_check["finished_key_hex"]),
            h(finished_check["handshake_context_hex"]),
            h(finished_check["authenticator_request_hex"]),
            h(vector["certificate_msg_hex"]),
            h(vector["certificate_verify_msg_hex"]),
        )
        assert FinishedMessage(verify_data).encode().hex() == vector["finished_msg_hex"]

    @pytest.mark.parametrize(
        ("label", "valid_key"),
        [
            (b"Exported Authenticator", "valid_with_label_Exported_Authenticator"),
            (PRE_RFC_LABEL, "valid_with_label_TLS_1_3_server_CertificateVerify"),
        ],
    )
    def test_signature_labels(self, fizz: dict[str, Any], label: bytes, valid_key: str) -> None:
        vector = fizz["get_context_authenticator"]
        finished_check = vector["finished_check"]
        certificate_verify = CertificateVerifyMessage.decode(
            h(vector["certificate_verify_msg_hex"])
        )
        leaf = x509.load_der_x509_certificate(h(vector["leaf_certificate_der_hex"]))
        key = leaf.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        content = certificate_verify_content(
            "sha256",
            h(finished_check["handshake_context_hex"]),
            h(finished_check["authenticator_request_hex"]),
            h(vector["certificate_msg_hex"]),
            label=label,
        )
        if vector["certificate_verify_check"][valid_key]:
            verify(key, certificate_verify.scheme, certificate_verify.signature, content)
        else:
            with pytest.raises(BadSignature):
                verify(key, certificate_verify.scheme, certificate_verify.signature, content)

    def test_spki_is_taken_from_the_certificate(self, fizz: dict[str, Any]) -> None:
        leaf = x509.load_der_x509_certificate(h(fizz["expected_cert"]["certificate_der_hex"]))
        spki = spki_der(leaf)
        assert spki in leaf.public_bytes(serialization.Encoding.DER)
        assert spki == leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class TestNegativeVectors:
    def test_every_negative_vector_is_rejected(self, fizz: dict[str, Any]) -> None:
        assert fizz["negative_vectors"]
        for vector in fizz["negative_vectors"]:
            assert vector["valid"] is False
            with pytest.raises(AuthenticatorError):
                check(vector, h(vector["authenticator_hex"]))

    def test_empty_list_with_16_byte_keys(self, fizz: dict[str, Any]) -> None:
        vector = fizz["negative_vectors"][0]
        assert len(h(vector["handshake_context_hex"])) == 16  # unhexlify()'d, per the notes
        with pytest.raises(EmptyCertificateList):
            check(vector, h(vector["authenticator_hex"]))

    def test_pre_rfc_signature_rejected(self, fizz: dict[str, Any]) -> None:
        vector = fizz["negative_vectors"][1]
        with pytest.raises(BadSignature):
            check(vector, h(vector["authenticator_hex"]))
