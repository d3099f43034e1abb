"""``attquic quote show|verify``: output, JSON verdicts and exit codes 0/1/2."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from attquic._cli.quote import add_show_verify, read_quote_file

P1_NOW = "1752919234"


def run(argv: list[str]) -> int:
    """Parse with the quote group's show/verify (independent of the simulate module)."""
    parser = argparse.ArgumentParser(prog="attquic")
    sub = parser.add_subparsers(dest="group", required=True)
    quote_sub = sub.add_parser("quote").add_subparsers(dest="quote_command", required=True)
    add_show_verify(quote_sub)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


@pytest.fixture(scope="module")
def s(tdx_samples_dir: Path) -> Path:
    return tdx_samples_dir


def test_show_json(s: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["quote", "show", str(s / "phala-dcap-qvl/tdx_quote"), "--json"]) == 0
    fields = json.loads(capsys.readouterr().out)
    assert fields["version"] == 4 and fields["fmspc"] == "B0C06F000000"
    assert fields["mrtd"].startswith("91eb2b44d141d4ec")
    assert fields["td_attributes"]["sept_ve_disable"] is True
    assert len(fields["rtmrs"]) == 4 and fields["quote_length"] == 4936


def test_show_text_and_hex_input(s: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["quote", "show", str(s / "phala-dcap-qvl/tdx-quote.hex")]) == 0
    out = capsys.readouterr().out
    assert "version: 4" in out and "rtmrs[3]:" in out


def test_read_quote_file_accepts_hex_without_prefix(s: Path, tmp_path: Path) -> None:
    raw = (s / "phala-dcap-qvl/tdx_quote").read_bytes()
    path = tmp_path / "q.hex"
    path.write_text(raw.hex().upper() + "\n")
    assert read_quote_file(str(path)) == raw


def test_show_unusable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x04\x00\x02\x00")
    assert run(["quote", "show", str(bad)]) == 2
    assert "truncated" in capsys.readouterr().err
    assert run(["quote", "show", str(tmp_path / "missing")]) == 2


def _verify(s: Path, quote: str, collateral: str, at: str, *extra: str) -> list[str]:
    return [
        "quote",
        "verify",
        str(s / quote),
        "--collateral",
        str(s / collateral),
        "--at",
        at,
        *extra,
    ]


def test_verify_accepted_json(s: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _verify(
        s, "phala-dcap-qvl/tdx_quote", "phala-dcap-qvl/tdx_quote_collateral.json", P1_NOW, "--json"
    )
    assert run(argv) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["accepted"] is True and verdict["reasons"] == []
    assert verdict["tcb_status"] == "UpToDate" and verdict["advisory_ids"] == []
    assert verdict["mrtd"].startswith("91eb2b44d141d4ec") and len(verdict["rtmrs"]) == 4
    assert verdict["report_data"].startswith("9a9d48e7f6799642")


def test_verify_rejected_out_of_date(s: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _verify(
        s,
        "zkdcap/quote_tdx_00806f050000.dat",
        "zkdcap/collateral_00806f050000_assembled.json",
        "1740048927",
        "--json",
    )
    assert run(argv) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["accepted"] is False and verdict["tcb_status"] == "OutOfDate"
    assert len(verdict["reasons"]) == 4


def test_verify_policy_file_accepts_out_of_date(
    s: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(
        'accepted_tcb_statuses = ["OutOfDate"]\n'
        'accepted_advisory_ids = ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"]\n'
    )
    argv = _verify(
        s,
        "zkdcap/quote_tdx_00806f050000.dat",
        "zkdcap/collateral_00806f050000_assembled.json",
        "1740048927",
        "--policy",
        str(policy),
    )
    assert run(argv) == 0
    assert "accepted: TCB status OutOfDate" in capsys.readouterr().out


def test_verify_window_and_report_data(s: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("phala-dcap-qvl/tdx_quote", "phala-dcap-qvl/tdx_quote_collateral.json")
    assert run(_verify(s, *base, "1752919235")) == 1
    assert "collateral not valid at" in capsys.readouterr().out
    assert run(_verify(s, *base, P1_NOW, "--report-data", "00" * 64, "--json")) == 1
    assert "REPORTDATA" in json.loads(capsys.readouterr().out)["reasons"][0]
    good = "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"  # noqa: E501
    assert run(_verify(s, *base, P1_NOW, "--report-data", "0x" + good)) == 0


def test_verify_debug_td_rejected(s: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _verify(
        s, "trustee/tdx_quote_4.dat", "go-tdx-guest/collateral_v4_assembled.json", "1688801098"
    )
    assert run(argv) == 1
    assert "debug mode" in capsys.readouterr().out


def test_verify_unsafe_root(s: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("phala-dcap-qvl/tdx_quote", "phala-dcap-qvl/tdx_quote_collateral.json")
    root = str(s / "intel-root/Intel_SGX_Root_CA.pem")
    assert run(_verify(s, *base, P1_NOW, "--unsafe-root-ca", root)) == 0
    assert "NON-INTEL" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra",
    [
        ["--report-data", "zz"],
        ["--report-data", "00"],
        ["--policy", "/nonexistent.toml"],
        ["--unsafe-root-ca", "/nonexistent.der"],
    ],
)
def test_verify_unusable_options(s: Path, extra: list[str]) -> None:
    base = ("phala-dcap-qvl/tdx_quote", "phala-dcap-qvl/tdx_quote_collateral.json")
    assert run(_verify(s, *base, P1_NOW, *extra)) == 2


def test_verify_unusable_inputs(s: Path, tmp_path: Path) -> None:
    bad_collateral = tmp_path / "c.json"
    bad_collateral.write_text("{}")
    argv = [
        "quote",
        "verify",
        str(s / "phala-dcap-qvl/tdx_quote"),
        "--collateral",
        str(bad_collateral),
        "--at",
        P1_NOW,
    ]
    assert run(argv) == 2
    bad_quote = tmp_path / "q"
    bad_quote.write_bytes(b"\x05\x00" + bytes(100))
    argv = [
        "quote",
        "verify",
        str(bad_quote),
        "--collateral",
        str(s / "phala-dcap-qvl/tdx_quote_collateral.json"),
        "--at",
        P1_NOW,
    ]
    assert run(argv) == 2


def test_registered_in_the_attquic_command(s: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attquic._cli import main

    assert main(["quote", "show", str(s / "phala-dcap-qvl/tdx_quote"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 4
