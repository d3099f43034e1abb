"""``attquic cmw decode``: tree output, JSON output, inputs (binary, hex, JSON, certificate),
and exit 2 with a one-line reason on invalid input."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from attquic import cmw, profile
from attquic._cli import cmw as cmw_cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="attquic")
    cmw_cli.register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


EVIDENCE = cmw.CMWRecord(profile.TDX_QUOTE_MEDIA_TYPE, bytes(range(256)) * 20, 4)
RESULT = cmw.CMWRecord(profile.EAR_JWT_MEDIA_TYPE, b"eyJhbGciOiJFUzI1NiJ9.e30.sig", 8)
TREE = cmw.CMWCollection(
    {"tdx": EVIDENCE, 7: cmw.CMWCollection({"ear": RESULT}, "1.2.3")}, "tag:example.com,2026:x"
)


def test_text_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tree.cbor"
    path.write_bytes(cmw.encode_cbor(TREE))
    assert run(["cmw", "decode", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cbor-collection: collection  2 items  __cmwc_t=tag:example.com,2026:x"
    assert lines[1].startswith(f'  "tdx": record  type={json.dumps(profile.TDX_QUOTE_MEDIA_TYPE)}')
    assert "ind=4 (evidence)  5120 bytes  hex: 000102030405" in lines[1]
    assert lines[1].endswith("...")
    assert lines[2] == "  7: collection  1 item  __cmwc_t=1.2.3"
    assert lines[3].startswith('    "ear": record')
    assert 'ind=8 (attestation-results)  28 bytes  text: "eyJhbGciOiJFUzI1NiJ9.e30.sig"' in lines[3]


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tree.json"
    path.write_bytes(cmw.encode_json(cmw.CMWCollection({"ear": RESULT})))
    assert run(["cmw", "decode", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "cmw" and out["form"] == "json-collection"
    (item,) = out["cmw"]["items"]
    assert item["label"] == "ear"
    assert item["cmw"]["kind"] == "record"
    assert item["cmw"]["ind"] == 8 and item["cmw"]["indicators"] == ["attestation-results"]
    assert item["cmw"]["value_length"] == len(RESULT.value)
    assert item["cmw"]["preview_kind"] == "text" and not item["cmw"]["truncated"]


def test_tag_and_hex_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tag.hex"
    path.write_text("da6374ffe6 442347da55\n")
    assert run(["cmw", "decode", str(path)]) == 0
    assert capsys.readouterr().out.strip() == (
        "cbor-tag: tag 1668612070 (C-F 64999)  4 bytes  hex: 2347da55"
    )


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'["application/vnd.a", "YQ", 1]'))
    monkeypatch.setattr("sys.stdin", stdin)
    assert run(["cmw", "decode", "-"]) == 0
    assert capsys.readouterr().out.strip() == (
        'json-record: record  type="application/vnd.a"  ind=1 (reference-values)  1 byte  text: "a"'
    )


def test_certificate_input(vectors_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = vectors_dir / "cmw" / "veraison-cmw-testdata" / "x509-cert+json-cmw.der"
    assert run(["cmw", "decode", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "x509-certificate" and out["form"] == "json-collection"
    assert [item["label"] for item in out["cmw"]["items"]] == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x82\x00", "MalformedEncoding: truncated"),
        (b'["a/b", "YQ=="]', "InvalidBase64"),
        (b'{"a": ["a/b", ""], "a": ["a/b", ""]}', "DuplicateLabel"),
        (b"zz", "MalformedEncoding"),
        (b"abc", "MalformedEncoding: input looks like hex"),
        (b"0\x03\x02\x01\x00", "MalformedEncoding: not a CMW and not a certificate"),
        (b"{\n}", "EmptyCollection"),
    ],
)
def test_invalid_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, reason: str
) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    assert run(["cmw", "decode", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"attquic cmw decode: {reason}")
    assert captured.err.count("\n") == 1


def test_depth_limit_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nested.json"
    path.write_bytes(b'{"a": {"b": ["a/b", ""]}}')
    assert run(["cmw", "decode", "--max-depth", "1", str(path)]) == 2
    assert "DepthExceeded" in capsys.readouterr().err
    assert run(["cmw", "decode", "--max-depth", "2", str(path)]) == 0


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["cmw", "decode", str(tmp_path / "missing")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_registered_in_global_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from attquic._cli import main

    path = tmp_path / "r.cbor"
    path.write_bytes(cmw.encode_cbor(RESULT))
    assert main(["cmw", "decode", str(path)]) == 0
    assert capsys.readouterr().out.startswith("cbor-record: record")
