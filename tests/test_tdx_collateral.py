"""Collateral: windows, JSON loading, the (FMSPC, CA) cache, and fetching from a fake PCCS."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from attquic.errors import CollateralError
from attquic.tdx.collateral import (
    Collateral,
    CollateralCache,
    CollateralSource,
    FileCollateral,
    PccsCollateral,
    StaticCollateral,
)
from attquic.tdx.quote import TdxQuote, parse_quote
from attquic.tdx.verifier import verify_quote

P1_QUOTE = "phala-dcap-qvl/tdx_quote"
P1_COLLATERAL = "phala-dcap-qvl/tdx_quote_collateral.json"
P1_NOW = 1752919234


@pytest.fixture(scope="module")
def p1_json(tdx_samples_dir: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads((tdx_samples_dir / P1_COLLATERAL).read_text())
    return data


@pytest.fixture(scope="module")
def p1_quote(tdx_samples_dir: Path) -> TdxQuote:
    return parse_quote((tdx_samples_dir / P1_QUOTE).read_bytes())


def test_windows_of_each_piece(tdx_samples_dir: Path) -> None:
    collateral = Collateral.from_file(tdx_samples_dir / P1_COLLATERAL)
    assert collateral.fmspc == "B0C06F000000"
    assert collateral.tcb_evaluation_data_number == 17
    assert collateral.not_before == 1750329147 == collateral.qe_identity_issue_date
    assert collateral.not_after == 1752919235
    assert collateral.window_problem(P1_NOW) is None
    problem = collateral.window_problem(collateral.not_after)
    assert problem is not None and problem.startswith(
        "collateral not valid at 2025-07-19T10:00:35Z"
    )
    assert "PCK CRL expired" in problem
    early = collateral.window_problem(0)
    assert early is not None and "TCB info issued" in early and "QE identity issued" in early


def test_json_round_trip(tdx_samples_dir: Path) -> None:
    collateral = Collateral.from_file(tdx_samples_dir / P1_COLLATERAL)
    again = Collateral.from_json(collateral.to_json())
    assert again.not_after == collateral.not_after and again.fmspc == collateral.fmspc


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "not json", "not JSON"),
        (lambda d: "[]", "not an object"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "pck_crl"}), "lacks pck_crl"),
        (lambda d: json.dumps({**d, "pck_crl": "zz"}), "collateral"),
        (lambda d: json.dumps({**d, "root_ca_crl": "3000"}), "root CA CRL is not a DER CRL"),
        (lambda d: json.dumps({**d, "tcb_info": "{}"}), "TCB info issueDate"),
        (lambda d: json.dumps({**d, "qe_identity": '{"issueDate": 5}'}), "QE identity issueDate"),
    ],
)
def test_malformed_collateral(p1_json: dict[str, str], mutate: Any, message: str) -> None:
    with pytest.raises(CollateralError, match=message):
        Collateral.from_json(mutate(p1_json))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CollateralError, match="cannot read collateral file"):
        FileCollateral(tmp_path / "absent.json")


@pytest.mark.anyio
async def test_file_source(tdx_samples_dir: Path, p1_quote: TdxQuote) -> None:
    source = FileCollateral(tdx_samples_dir / P1_COLLATERAL)
    assert isinstance(source, CollateralSource)
    collateral = await source.get(p1_quote, now=P1_NOW)
    assert verify_quote(p1_quote, collateral, now=P1_NOW).tcb_status == "UpToDate"
    assert isinstance(StaticCollateral(collateral), CollateralSource)


def test_cache_expires_at_next_update(tdx_samples_dir: Path) -> None:
    collateral = Collateral.from_file(tdx_samples_dir / P1_COLLATERAL)
    cache = CollateralCache()
    assert cache.get(b"\xb0\xc0\x6f\x00\x00\x00", "platform", now=P1_NOW) is None
    cache.put("b0c06f000000", "Platform", collateral)
    assert cache.get(bytes.fromhex("b0c06f000000"), "platform", now=P1_NOW) is collateral
    assert cache.get("B0C06F000000", "processor", now=P1_NOW) is None
    assert cache.get("B0C06F000000", "platform", now=collateral.not_after - 1) is collateral
    assert cache.get("B0C06F000000", "platform", now=collateral.not_after) is None
    assert len(cache) == 0  # the expired entry was dropped


def test_cache_persists_to_disk(tdx_samples_dir: Path, tmp_path: Path) -> None:
    collateral = Collateral.from_file(tdx_samples_dir / P1_COLLATERAL)
    CollateralCache(tmp_path).put("B0C06F000000", "platform", collateral)
    assert len(list(tmp_path.glob("*.json"))) == 1
    restarted = CollateralCache(tmp_path)
    loaded = restarted.get("B0C06F000000", "platform", now=P1_NOW)
    assert loaded is not None and loaded.not_after == collateral.not_after
    assert CollateralCache(tmp_path).get("B0C06F000000", "platform", now=2e9) is None
    (tmp_path / "tdx-collateral-B0C06F000000-platform.json").write_text("garbage")
    assert CollateralCache(tmp_path).get("B0C06F000000", "platform", now=P1_NOW) is None


# --- fake PCCS -------------------------------------------------------------------------------


class FakePccs(BaseHTTPRequestHandler):
    collateral: ClassVar[dict[str, str]] = {}
    mode: ClassVar[str] = "ok"
    hits: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, urllib.parse.quote(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.hits.append(self.path)
        c = self.collateral
        if self.mode == "500":
            self._send(500, b"internal error")
        elif url.path == "/tdx/certification/v4/tcb":
            if query.get("fmspc", [""])[0].upper() != "B0C06F000000":
                self._send(404, b"")
                return
            body = '{"tcbInfo":' + c["tcb_info"] + ',"signature":"' + c["tcb_info_signature"] + '"}'
            if self.mode == "malformed":
                body = body[:-5]
            headers = (
                {}
                if self.mode == "nochain"
                else {"TCB-Info-Issuer-Chain": c["tcb_info_issuer_chain"]}
            )
            self._send(200, body.encode(), headers)
        elif url.path == "/tdx/certification/v4/qe/identity":
            body = '{"enclaveIdentity": ' + c["qe_identity"] + ', "signature": "'
            body += c["qe_identity_signature"] + '"}'
            chain = {"SGX-Enclave-Identity-Issuer-Chain": c["qe_identity_issuer_chain"]}
            self._send(200, body.encode(), chain)
        elif url.path == "/sgx/certification/v4/pckcrl" and query.get("ca") == ["platform"]:
            chain = {"SGX-PCK-CRL-Issuer-Chain": c["pck_crl_issuer_chain"]}
            self._send(200, bytes.fromhex(c["pck_crl"]), chain)
        elif url.path == "/sgx/certification/v4/rootcacrl":
            self._send(200, c["root_ca_crl"].encode())  # PCCS serves the root CRL as hex
        else:
            self._send(404, b"")


@pytest.fixture
def pccs(p1_json: dict[str, str]) -> Iterator[str]:
    FakePccs.collateral = p1_json
    FakePccs.mode = "ok"
    FakePccs.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePccs)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.network
@pytest.mark.anyio
async def test_pccs_fetch_verifies_and_caches(pccs: str, p1_quote: TdxQuote) -> None:
    cache = CollateralCache()
    source = PccsCollateral(pccs, cache=cache, timeout=5)
    collateral = await source.get(p1_quote, now=P1_NOW)
    assert len(FakePccs.hits) == 4
    assert verify_quote(p1_quote, collateral, now=P1_NOW).tcb_status == "UpToDate"
    assert collateral.not_after == 1752919235
    again = await source.get(p1_quote, now=P1_NOW)
    assert again is collateral and len(FakePccs.hits) == 4  # cache hit
    # past nextUpdate the entry is stale and refetched (the fake serves the same pieces)
    await source.get(p1_quote, now=collateral.not_after)
    assert len(FakePccs.hits) == 8
    assert len(cache) == 0  # fetched collateral that is already stale is not cached


@pytest.mark.network
@pytest.mark.anyio
async def test_pccs_without_cache_fetches_every_time(pccs: str, p1_quote: TdxQuote) -> None:
    source = PccsCollateral(pccs, cache=None)
    await source.get(p1_quote, now=P1_NOW)
    await source.get(p1_quote, now=P1_NOW)
    assert len(FakePccs.hits) == 8


@pytest.mark.network
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("500", "HTTP 500"),
        ("malformed", "malformed TCB info response"),
        ("nochain", "lacks the TCB-Info-Issuer-Chain header"),
    ],
)
async def test_pccs_errors(pccs: str, p1_quote: TdxQuote, mode: str, message: str) -> None:
    FakePccs.mode = mode
    with pytest.raises(CollateralError, match=message):
        await PccsCollateral(pccs, cache=None).get(p1_quote, now=P1_NOW)


@pytest.mark.network
@pytest.mark.anyio
async def test_pccs_unknown_fmspc_is_http_404(pccs: str) -> None:
    with pytest.raises(CollateralError, match="HTTP 404"):
        await PccsCollateral(pccs, cache=None).get_for("00606A000000", "platform", now=P1_NOW)


@pytest.mark.network
@pytest.mark.anyio
async def test_pccs_unreachable(p1_quote: TdxQuote) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = PccsCollateral(f"http://127.0.0.1:{port}", cache=None, timeout=2)
    with pytest.raises(CollateralError, match="unreachable"):
        await source.get(p1_quote, now=P1_NOW)
