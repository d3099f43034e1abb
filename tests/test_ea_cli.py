"""``attquic ea decode``: structure of requests and authenticators, exit 2 on malformed input."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from attquic import profile
from attquic._cli import ea as ea_cli
from attquic.ea.authenticator import ExportedAuthenticators
from attquic.ea.identity import generate_self_signed
from attquic.ea.messages import Extension, Role
from attquic.keyschedule import ExporterSecret

CMW = profile.CMW_ATTESTATION_EXTENSION
Run = Callable[[list[str]], int]


def run_ea_only(argv: list[str]) -> int:
    """The ``ea`` group alone, independent of the other command groups."""
    parser = argparse.ArgumentParser(prog="attquic")
    ea_cli.register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def run_main(argv: list[str]) -> int:
    from attquic._cli import main

    return main(argv)


@pytest.fixture(params=[run_ea_only, run_main], ids=["ea-only", "main"])
def run(request: pytest.FixtureRequest) -> Run:
    runner: Run = request.param
    return runner


@pytest.fixture(scope="module")
def exchange() -> tuple[bytes, bytes, bytes]:
    exporter = ExporterSecret("sha384", os.urandom(48))
    client = ExportedAuthenticators(exporter, Role.CLIENT)
    server = ExportedAuthenticators(exporter, Role.SERVER)
    request = client.request([Extension(CMW)])
    identity = generate_self_signed("p256", "cli test")
    authenticator = server.authenticate(request, identity, [Extension(CMW, b"\x00\x03abc")])
    refusal = server.refuse(client.request())
    return request.encode(), authenticator, refusal


def decode_json(
    run: Run, path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, object]:
    assert run(["ea", "decode", str(path), "--json", *extra]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_request(
    run: Run,
    tmp_path: Path,
    exchange: tuple[bytes, bytes, bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    request, _, _ = exchange
    path = tmp_path / "request.bin"
    path.write_bytes(request)
    out = decode_json(run, path, capsys)
    assert out["kind"] == "authenticator_request"
    assert out["message"] == "ClientCertificateRequest"
    assert out["context_hex"] == request[5:37].hex()
    extensions = out["extensions"]
    assert isinstance(extensions, list)
    assert [e["name"] for e in extensions] == ["signature_algorithms", "cmw_attestation"]
    assert "ecdsa_secp256r1_sha256 (0x0403)" in extensions[0]["signature_schemes"]


def test_authenticator_from_hex(
    run: Run,
    tmp_path: Path,
    exchange: tuple[bytes, bytes, bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, authenticator, _ = exchange
    path = tmp_path / "authenticator.hex"
    path.write_text(authenticator.hex() + "\n")
    out = decode_json(run, path, capsys)
    assert out["kind"] == "authenticator"
    assert out["messages"] == ["Certificate", "CertificateVerify", "Finished"]
    assert out["hash"] == "sha384"
    certificates = out["certificates"]
    assert isinstance(certificates, list) and len(certificates) == 1
    assert certificates[0]["subject"] == "CN=cli test"
    assert certificates[0]["key_type"] == "EC secp256r1 key"
    assert certificates[0]["extensions"][0]["name"] == "cmw_attestation"
    assert out["signature_scheme"] == {
        "code": 0x0403,
        "name": "ecdsa_secp256r1_sha256 (0x0403)",
        "valid_for_tls13": True,
    }


def test_refusal(
    tmp_path: Path, exchange: tuple[bytes, bytes, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, refusal = exchange
    path = tmp_path / "refusal.bin"
    path.write_bytes(refusal)
    out = decode_json(run_ea_only, path, capsys)
    assert out["kind"] == "empty_authenticator"
    assert out["finished_hex"] == refusal[4:].hex()


def test_text_output(
    tmp_path: Path, exchange: tuple[bytes, bytes, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    request, authenticator, _ = exchange
    for name, data, needle in (
        ("r.bin", request, "cmw_attestation (0xffff)"),
        ("a.bin", authenticator, "certificate 0 (leaf): CN=cli test"),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        assert run_ea_only(["ea", "decode", str(path)]) == 0
        assert needle in capsys.readouterr().out


def test_headerless_fizz_request(
    vectors_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fizz = json.loads((vectors_dir / "ea" / "fizz.json").read_text())
    path = tmp_path / "fizz.hex"
    path.write_text(fizz["authenticator_request_test"]["expected_auth_request_hex"])
    out = decode_json(run_ea_only, path, capsys, "--headerless")
    assert out["context_hex"] == "303132333435363738396162636465666768696a"
    path.write_text(fizz["get_context_authenticator"]["authenticator_hex"])
    out = decode_json(run_ea_only, path, capsys, "--hash", "sha256")
    assert out["certificates"][0]["subject"].startswith("CN=Fizz")  # type: ignore[index]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x0b\x00\x00\x05\x00",  # truncated
        bytes.fromhex("0d000003000000"),  # request without extensions
        b"zz not hex",
        b"0b00000400000000" + b"14000021" + b"00" * 33,  # Finished of 33 bytes: no such hash
        b"abc",  # odd-length hex
    ],
)
def test_malformed_exit_2(
    run: Run, tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    assert run(["ea", "decode", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("attquic ea decode: ")
    assert captured.err.count("\n") == 1


def test_bad_certificate_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytes.fromhex("0b00000a00000006000001ff00000f0000040403000014000020") + bytes(32)
    path = tmp_path / "bad-cert"
    path.write_bytes(data)
    assert run_ea_only(["ea", "decode", str(path)]) == 2
    assert "not a DER X.509 certificate" in capsys.readouterr().err


def test_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_ea_only(["ea", "decode", str(tmp_path / "absent")]) == 2
    assert "cannot read" in capsys.readouterr().err
