"""The command line as a newcomer meets it: help, version, times, and errors that say what is
wrong (in-process through ``attquic._cli.main``; subprocesses where stderr of a real process
matters)."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from attquic import __version__, cmw, profile
from attquic._cli import build_parser, main
from attquic.ea.authenticator import ExportedAuthenticators
from attquic.ea.messages import Extension, Role
from attquic.keyschedule import ExporterSecret
from attquic.tdx.simulated import SimulatedTdxHierarchy

ROOT = Path(__file__).resolve().parent.parent
#: 2026-01-01T00:00:00Z
NOW = 1767225600


def _attquic(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attquic", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_bare_attquic_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: attquic")
    for group in ("ea", "cmw", "quote", "verifier"):
        assert re.search(rf"^\s+{group}\s+\S", out, flags=re.MULTILINE), group


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"attquic {__version__}\n"


def _all_help_texts() -> str:
    parser = build_parser()
    texts = [parser.format_help()]
    pending = [parser]
    while pending:
        current = pending.pop()
        for action in current._actions:
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for sub in choices.values():
                    texts.append(sub.format_help())
                    pending.append(sub)
    return "\n".join(texts)


def test_help_texts_carry_no_rest_markup() -> None:
    texts = _all_help_texts()
    assert "quote simulate" in texts  # the walk reached the leaves
    for markup in ("``", ":class:", ":mod:", ":func:", ":data:"):
        assert markup not in texts, markup


# --- quote show: any well-formed quote, the PCK issuer shown, not judged --------------------


@pytest.mark.parametrize("version", [4, 5])
def test_quote_show_displays_a_simulated_quote(
    version: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quote = tmp_path / "quote.bin"
    quote.write_bytes(SimulatedTdxHierarchy.default().quote(bytes(64), version=version))  # type: ignore[arg-type]
    assert main(["quote", "show", str(quote), "--json"]) == 0
    fields = json.loads(capsys.readouterr().out)
    assert fields["version"] == version
    assert fields["pck_issuer"] == "attquic SIMULATED SGX PCK Platform CA"
    assert fields["ca"] is None  # none of Intel's PCK CAs: said separately, not an error
    assert main(["quote", "show", str(quote)]) == 0
    text = capsys.readouterr().out
    assert "pck_issuer: attquic SIMULATED SGX PCK Platform CA" in text
    assert "ca: none of Intel's PCK CAs" in text


def test_quote_show_still_refuses_a_truncated_quote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quote = tmp_path / "quote.bin"
    quote.write_bytes(SimulatedTdxHierarchy.default().quote(bytes(64))[:600])
    assert main(["quote", "show", str(quote)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attquic quote: ") and err.count("\n") == 1


# --- --at: now, ISO-8601, Unix seconds ------------------------------------------------------


@pytest.fixture(scope="module")
def simulated_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sim")
    hierarchy = SimulatedTdxHierarchy.default()
    (directory / "quote.bin").write_bytes(hierarchy.quote(bytes(64)))
    (directory / "collateral.json").write_text(hierarchy.collateral_json(NOW))
    (directory / "root.der").write_bytes(hierarchy.root_ca_der)
    return directory


def _verify(files: Path, at: str) -> list[str]:
    return [
        "quote", "verify", str(files / "quote.bin"), "--collateral",
        str(files / "collateral.json"), "--unsafe-root-ca", str(files / "root.der"),
        "--at", at, "--json",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "at",
    [
        str(NOW),
        f"{NOW}.5",
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01T01:00:00+01:00",
    ],
)
def test_at_accepts_unix_seconds_and_iso_8601(
    at: str, simulated_files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_verify(simulated_files, at)) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] is True


def test_at_now_is_the_current_time(
    simulated_files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The collateral is for 2026-01-01: 'now' (later) must be judged as now, not as NOW."""
    code = main(_verify(simulated_files, "now"))
    if datetime.datetime.now(datetime.UTC).year == 2026 and code == 0:
        return  # still inside the collateral's 30-day window: accepted, as it should
    assert code == 1
    assert "not valid at" in " ".join(json.loads(capsys.readouterr().out)["reasons"])


@pytest.mark.parametrize("at", ["yesterday", "2026-13-01", ""])
def test_at_rejects_anything_else_with_the_accepted_forms(
    at: str, simulated_files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(_verify(simulated_files, at))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "is not a time: give 'now', Unix seconds" in err and "ISO-8601" in err


# --- ea decode: input that is not RFC 9261 says so ------------------------------------------


def test_ea_decode_on_a_pem_file_says_it_is_not_rfc_9261(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cert.pem"
    path.write_bytes(SimulatedTdxHierarchy.default().root_ca_pem)
    assert main(["ea", "decode", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attquic ea decode: not an RFC 9261 request or authenticator: ")
    assert "the first byte is 45" in err and "need" not in err
    assert err.count("\n") == 1


def test_ea_decode_hints_headerless_for_a_bare_request_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exporter = ExporterSecret("sha256", bytes(32))
    request = ExportedAuthenticators(exporter, Role.CLIENT).request(
        [Extension(profile.CMW_ATTESTATION_EXTENSION)]
    )
    path = tmp_path / "body.bin"
    path.write_bytes(request.encode()[4:])  # without the 4-byte handshake header, as Fizz sends
    assert main(["ea", "decode", str(path)]) == 2
    assert capsys.readouterr().err.rstrip().endswith("try --headerless")
    assert main(["ea", "decode", "--headerless", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["context_hex"] == request.context.hex()


def test_ea_decode_on_a_declared_length_beyond_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(bytes([profile.HS_CERTIFICATE, 0x2D, 0x2D, 0x2D, 0, 0]))
    assert main(["ea", "decode", str(path)]) == 2
    err = capsys.readouterr().err
    assert "declares 2960685 bytes, the input has 2 after the header" in err


# --- cmw decode: the offending member is named ----------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"evidence": ["not a media type", "AA"]}, "member 'evidence': invalid media type"),
        ({"outer": {"inner": ["text/plain", "A"]}}, "member 'outer': member 'inner': "),
        ({"ok": ["text/plain", "AA"], "bad": ["text/plain", "AA", 0]}, "member 'bad': indicator"),
    ],
)
def test_cmw_decode_names_the_offending_member(
    document: dict[str, object], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cmw.json"
    path.write_text(json.dumps(document))
    assert main(["cmw", "decode", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_cbor_collection_errors_name_the_member_too() -> None:
    bad = cmw.CMWRecord("text/plain", b"x")
    data = bytearray(cmw.encode_cbor(cmw.CMWCollection({"m": bad})))
    data[data.index(b"text/plain")] = ord("(")  # an invalid media type, same length
    with pytest.raises(cmw.CMWError, match=r"^member 'm': "):
        cmw.decode_cbor(bytes(data))


# --- one process, one simulation warning; logs on stderr, never stdout -----------------------


def test_quote_simulate_warns_once_on_stderr(tmp_path: Path) -> None:
    result = _attquic("quote", "simulate", "--out-dir", str(tmp_path), "--at", "now")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("SimulatedTdxWarning") == 1, result.stderr
    assert "SIMULATED" in result.stdout and "Warning" not in result.stdout


def test_logs_go_to_stderr_and_stdout_stays_json(tmp_path: Path) -> None:
    hierarchy = SimulatedTdxHierarchy.default()
    (tmp_path / "q.bin").write_bytes(hierarchy.quote(bytes(64)))
    (tmp_path / "c.json").write_text(hierarchy.collateral_json(NOW))
    (tmp_path / "r.der").write_bytes(hierarchy.root_ca_der)
    result = _attquic(
        "quote", "verify", str(tmp_path / "q.bin"), "--collateral", str(tmp_path / "c.json"),
        "--unsafe-root-ca", str(tmp_path / "r.der"), "--at", str(NOW), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accepted"] is True  # nothing else on stdout
    assert "tdx.unsafe_root_ca" in result.stderr  # the library's warning: on stderr


# --- packaging papercuts ----------------------------------------------------------------------


def test_licence_is_an_spdx_expression() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"


def test_make_help_lists_the_targets() -> None:
    result = subprocess.run(
        ["make", "-s", "help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for target in ("demo", "test", "lint", "bench", "fuzz", "clean"):
        assert re.search(rf"^\s+{target}\s+\S", result.stdout, flags=re.MULTILINE), target
