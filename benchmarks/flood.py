"""Flood benchmark: attested clients' time to first byte while unattested clients flood the
server with early data.

Three processes on 127.0.0.1:

* the **server**: ``attquic.serve`` with a simulated TDX attester and an echo handler;
* the **flood**: N plain aioquic clients (default 500) that open the control stream, ask for
  attestation and then never finish it, while writing early application data on several
  streams (up to the server's early-data bound and beyond). When the server closes one
  (TIMEOUT, or a stream refused with BUFFER_OVERFLOW), it reconnects, so the pressure holds;
* the **probe** (this process): attested clients (full DCAP verification of the server's
  simulated quote) that connect, send one request and time the first byte of the answer,
  first with the server idle, then during the flood.

Prints one JSON object: the idle and flood TTFB distributions (ms), their median ratio (goal:
within 3x), the flood's figures and the server's peak RSS. It is a benchmark, not a test: it
asserts nothing.

    python benchmarks/flood.py [--flooders 500] [--probes 20] [--early-bytes 262144] [--settle 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import warnings
from typing import Any

import psutil  # type: ignore[import-untyped]
from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic import events as quic_events
from aioquic.quic.configuration import QuicConfiguration
from harness import echo_streams  # benchmarks/ is sys.path[0]: run as a script

import attquic
from attquic import frames, profile
from attquic.demo_ca import DemoCA
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.simulated import (
    DEFAULT_MEASUREMENTS,
    SimulatedCollateral,
    SimulatedTdxAttester,
    SimulatedTdxHierarchy,
    SimulatedTdxWarning,
)
from attquic.tdx.verifier import TdxVerifier

ALPN = "attquic-flood"


def _server_tls() -> QuicConfiguration:
    # the demo CA issues the TLS certificate, which is also the authenticator identity
    identity = DemoCA.default().issue("flood server", ip_addresses=["127.0.0.1"], client=False)
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.certificate = identity.leaf
    config.private_key = identity.private_key
    return config


def _client_tls() -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
    config.cadata = DemoCA.default().certificate_pem  # expat -04 §3.3: TLS verifies the server
    return config


# --- server process ------------------------------------------------------------------------------


async def run_server(timeout: float, early_data_limit: int) -> None:
    attester = SimulatedTdxAttester()
    server = await attquic.serve(
        "127.0.0.1",
        0,
        configuration=_server_tls(),
        attestation=attquic.AttestationConfiguration(
            attester=attester, attestation_timeout=timeout, early_data_limit=early_data_limit
        ),
        handler=echo_streams,
    )
    print(json.dumps({"port": server.port}), flush=True)
    await asyncio.Event().wait()


# --- flood process -------------------------------------------------------------------------------


class _Flooder(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended: asyncio.Future[int] = self._loop.create_future()
        self.refused_streams = 0

    def quic_event_received(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.StreamDataReceived):
            return  # no stream readers: nothing here reads
        if isinstance(event, quic_events.StopSendingReceived | quic_events.StreamReset):
            self.refused_streams += 1
        super().quic_event_received(event)
        if isinstance(event, quic_events.ConnectionTerminated) and not self.ended.done():
            self.ended.set_result(event.error_code)


class _FloodStats:
    def __init__(self) -> None:
        self.connected = 0
        self.live = 0
        self.early_bytes = 0
        self.closed_by_code: dict[str, int] = {}
        self.refused_streams = 0


def _code_name(code: int) -> str:
    try:
        return attquic.CloseCode(code).name
    except ValueError:
        return hex(code)


async def _flood_one(port: int, early_bytes: int, stats: _FloodStats) -> None:
    setup = frames.encode_frame(frames.SetupFrame(profile.PROFILE_VERSION, True, False))
    chunk = os.urandom(16 * 1024)
    while True:
        try:
            async with quic_connect(
                "127.0.0.1", port, configuration=_client_tls(), create_protocol=_Flooder
            ) as client:
                assert isinstance(client, _Flooder)
                stats.connected += 1
                stats.live += 1
                quic = client._quic
                quic.send_stream_data(profile.CONTROL_STREAM_ID, setup)
                sent = 0
                while sent < early_bytes and not client.ended.done():
                    stream_id = quic.get_next_available_stream_id()
                    for _ in range(4):  # 64 KiB per stream
                        quic.send_stream_data(stream_id, chunk)
                        sent += len(chunk)
                    client.transmit()
                    await asyncio.sleep(0.01)
                stats.early_bytes += sent
                code = await client.ended
                stats.live -= 1
                stats.refused_streams += client.refused_streams
                name = _code_name(code)
                stats.closed_by_code[name] = stats.closed_by_code.get(name, 0) + 1
        except (ConnectionError, OSError):
            await asyncio.sleep(0.1)


async def run_flood(port: int, flooders: int, early_bytes: int) -> None:
    stats = _FloodStats()
    tasks = []
    for _ in range(flooders):
        tasks.append(asyncio.create_task(_flood_one(port, early_bytes, stats)))
        await asyncio.sleep(0.002)  # ramp up over about a second
    while True:
        print(json.dumps({"flood": vars(stats)}), flush=True)
        await asyncio.sleep(1.0)


# --- probe ----------------------------------------------------------------------------------------


def _verifier() -> TdxVerifier:
    hierarchy = SimulatedTdxHierarchy.default()
    policy = AppraisalPolicy(
        accepted_mrtd=(DEFAULT_MEASUREMENTS.mrtd,),
        accepted_rtmr0=(DEFAULT_MEASUREMENTS.rtmrs[0],),
        accepted_rtmr3=(DEFAULT_MEASUREMENTS.rtmrs[3],),
    )
    return TdxVerifier(
        SimulatedCollateral(hierarchy), policy, unsafe_root_ca_der=hierarchy.root_ca_der
    )


async def ttfb(port: int, verifier: TdxVerifier) -> float:
    """Seconds from connecting to the first byte of the echoed request (handshake,
    attestation with full verification, one round trip)."""
    started = time.perf_counter()
    async with attquic.connect(
        "127.0.0.1",
        port,
        configuration=_client_tls(),
        attestation=attquic.AttestationConfiguration(verifier=verifier, attestation_timeout=60),
    ) as connection:
        stream = await connection.open_stream()
        await stream.send(b"ping")
        await stream.send_eof()
        first = await stream.receive(1)
        elapsed = time.perf_counter() - started
        assert first == b"p"
        return elapsed


def _summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2),
        "min_ms": round(ms[0], 2),
        "max_ms": round(ms[-1], 2),
    }


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


async def _read_json_line(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    while True:
        line = await asyncio.to_thread(process.stdout.readline)
        if not line:
            raise RuntimeError("child process exited")
        if line.startswith("{"):
            value: dict[str, Any] = json.loads(line)
            return value


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    server = _spawn(
        "--role", "server", "--timeout", str(args.attestation_timeout),
        "--server-early-data-limit", str(args.server_early_data_limit),
    )  # fmt: skip
    flood: subprocess.Popen[str] | None = None
    try:
        port = int((await _read_json_line(server))["port"])
        server_process = psutil.Process(server.pid)
        verifier = _verifier()
        await ttfb(port, verifier)  # warm up caches on both sides
        idle = [await ttfb(port, verifier) for _ in range(args.probes)]
        idle_rss = server_process.memory_info().rss
        flood = _spawn(
            "--role", "flood", "--port", str(port), "--flooders", str(args.flooders),
            "--early-bytes", str(args.early_bytes),
        )  # fmt: skip
        flood_stats: dict[str, Any] = {}
        while True:  # wait until the flood is at full strength
            flood_stats = (await _read_json_line(flood))["flood"]
            if flood_stats["live"] >= args.flooders * 0.9 or flood_stats["connected"] >= (
                2 * args.flooders
            ):
                break
        await asyncio.sleep(args.settle)
        loaded: list[float] = []
        failures: dict[str, int] = {}
        peak_rss = server_process.memory_info().rss
        for _ in range(args.probes):
            try:
                loaded.append(await asyncio.wait_for(ttfb(port, verifier), 60))
            except attquic.ConnectionClosed as exc:
                name = _code_name(exc.code)
                failures[name] = failures.get(name, 0) + 1
            except (TimeoutError, ConnectionError) as exc:
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
            peak_rss = max(peak_rss, server_process.memory_info().rss)
        flood_stats = (await _read_json_line(flood))["flood"]
        server_cpu = server_process.cpu_times()
    finally:
        for child in (flood, server):
            if child is not None:
                child.terminate()
                child.wait(timeout=10)
    idle_summary = _summary(idle)
    flood_summary = _summary(loaded) if loaded else {"n": 0}
    ratio = flood_summary["median_ms"] / idle_summary["median_ms"] if loaded else float("inf")
    return {
        "benchmark": "flood",
        "flooders": args.flooders,
        "early_bytes_per_flooder": args.early_bytes,
        "settle_s": args.settle,
        "server_early_data_limit": args.server_early_data_limit,
        "attestation_timeout_s": args.attestation_timeout,
        "idle_ttfb": idle_summary,
        "flood_ttfb": flood_summary,
        "flood_probe_failures": failures,
        "median_ratio": round(ratio, 2),
        "within_3x": ratio <= 3.0 and not failures,
        "flood": flood_stats,
        "server_rss_mib": {"idle": idle_rss >> 20, "peak_under_flood": peak_rss >> 20},
        "server_cpu_s": round(server_cpu.user + server_cpu.system, 2),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["probe", "server", "flood"], default="probe")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--flooders", type=int, default=500)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--early-bytes", type=int, default=256 * 1024)
    parser.add_argument(
        "--server-early-data-limit",
        type=int,
        default=profile.DEFAULT_EARLY_DATA_LIMIT,
        help="the server's AttestationConfiguration.early_data_limit",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait after the flood reached full strength before probing "
        "(0: probe during the burst; a few seconds: while the flood holds its early data)",
    )
    parser.add_argument("--attestation-timeout", "--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", SimulatedTdxWarning)
    # attquic logs through `logging` to stderr (stdout carries JSON): errors only
    logging.getLogger("attquic").setLevel(logging.ERROR)
    if args.role == "server":
        asyncio.run(run_server(args.attestation_timeout, args.server_early_data_limit))
    elif args.role == "flood":
        asyncio.run(run_flood(args.port, args.flooders, args.early_bytes))
    else:
        print(json.dumps(asyncio.run(probe(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
