"""Attestation at real TDX cost: plain aioquic, attquic unbatched, attquic batched.

A real TDX host makes one quote at a time, ~39 ms each (docs/tdx.md). The attested servers
here use the simulated TDX with that cost model (``SimulatedTdxAttester(quote_latency=0.039)``)
and either one quote per connection (``unbatched``) or batched evidence (``batched``); the
client verifies every connection with full DCAP. Closed loop: C clients each open a connection,
echo 32 bytes, close it in the background and start again; connections/s and the time to first
echoed byte (TTFB) per connection.

The relying party's verification cache is OFF for every attested figure (each connection is
verified in full, as distinct clients would) except ``batched_cached_conn_rate``.

    python benchmarks/tdx_cost.py [--quick] [--json]     # standalone
    (benchmarks/run.py runs it as its "real TDX cost" section)

Each server and each load run is its own process (UDP over loopback), as in benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from harness import echo_streams, percentile, progress  # noqa: E402

Json = dict[str, Any]
ALPN = "attquic-bench"
POLICY = ROOT / "examples" / "simulated-policy.toml"
LATENCY = 0.039
MODES = ("plain", "unbatched", "batched")
PAYLOAD = b"x" * 32
SERVER_RCVBUF = 4 * 1024 * 1024


@dataclass(frozen=True)
class CostParams:
    concurrencies: tuple[int, ...]
    """Closed-loop client counts measured for every mode (the plot's x axis); includes 1, 64."""
    connections: dict[int, int]
    """Connections measured per concurrency (after a warm-up of min(C, 8))."""
    unbatched_cap: int
    """Unbatched is ~25/s by construction: at most this many connections per point."""


COST_PRESETS = {
    "full": CostParams(
        (1, 4, 16, 32, 64), {1: 40, 4: 80, 16: 160, 32: 256, 64: 384}, unbatched_cap=192
    ),
    "quick": CostParams((1, 64), {1: 15, 64: 128}, unbatched_cap=96),
    # smoke: the harness end to end in seconds; its "64 concurrent" figures are at 8
    "smoke": CostParams((1, 8), {1: 2, 8: 8}, unbatched_cap=8),
}


# --- the peers (run as subprocesses of this file) ------------------------------------------------


def _server_tls() -> Any:
    from aioquic.quic.configuration import QuicConfiguration

    from attquic.demo_ca import DemoCA

    # the demo CA issues the TLS certificate, which is also the authenticator identity
    identity = DemoCA.default().issue(
        "attquic tdx-cost bench", ip_addresses=["127.0.0.1"], client=False
    )
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], idle_timeout=60)
    config.certificate, config.private_key = identity.leaf, identity.private_key
    return config


def _client_tls() -> Any:
    from aioquic.quic.configuration import QuicConfiguration

    from attquic.demo_ca import DemoCA

    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], idle_timeout=60)
    config.cadata = DemoCA.default().certificate_pem  # TLS verifies the server, as in run.py
    return config


def make_verifier(*, cache: bool) -> Any:
    """The client's TdxVerifier, with the verification cache and DCAP fast path on or off when
    this attquic has them (older ones verify every connection in full anyway)."""
    from attquic.tdx.policy import AppraisalPolicy
    from attquic.tdx.simulated import SimulatedCollateral, SimulatedTdxHierarchy
    from attquic.tdx.verifier import TdxVerifier

    hierarchy = SimulatedTdxHierarchy.default()
    kwargs: Json = {}
    accepted = inspect.signature(TdxVerifier).parameters
    for name in ("verification_cache", "fast_path"):
        if name in accepted:
            kwargs[name] = cache
    return TdxVerifier(
        SimulatedCollateral(hierarchy),
        AppraisalPolicy.from_file(POLICY),
        unsafe_root_ca_der=hierarchy.root_ca_der,
        **kwargs,
    )


def _grow_receive_buffer(transport: Any) -> None:
    """4 MiB of UDP receive buffer (within the usual net.core.rmem_max): 64 clients opening at
    once overflow the 208 KiB default while the server is busy, and the retransmission timers
    that follow (seconds) would measure the kernel's buffer, not QUIC or attestation."""
    sock = transport.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SERVER_RCVBUF)


async def _serve(mode: str, latency: float) -> None:
    from aioquic.asyncio import serve as quic_serve

    tasks: set[asyncio.Task[Any]] = set()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read())
        writer.write_eof()

    if mode == "plain":

        def on_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(echo(reader, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        server = await quic_serve(
            "127.0.0.1", 0, configuration=_server_tls(), stream_handler=on_stream
        )
        assert server._transport is not None
        transport = server._transport
        port = int(transport.get_extra_info("sockname")[1])
        close = server.close
    else:
        import attquic
        from attquic.tdx.simulated import SimulatedTdxAttester

        attester = SimulatedTdxAttester(quote_latency=latency, batching=mode == "batched")

        attested = await attquic.serve(
            "127.0.0.1",
            0,
            configuration=_server_tls(),
            attestation=attquic.AttestationConfiguration(attester=attester),
            handler=echo_streams,
        )
        port, close = attested.port, attested.close
        transport = attested._server._transport
    _grow_receive_buffer(transport)
    print(json.dumps({"port": port}), flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    close()


async def _load(mode: str, port: int, concurrency: int, count: int, cache: bool) -> Json:
    from aioquic.asyncio import connect as quic_connect

    import attquic

    config = (
        None
        if mode == "plain"
        else attquic.AttestationConfiguration(verifier=make_verifier(cache=cache))
    )
    closing: set[asyncio.Task[Any]] = set()

    async def one() -> float:
        started = time.perf_counter()
        stack = contextlib.AsyncExitStack()
        if config is None:
            protocol = await stack.enter_async_context(
                quic_connect("127.0.0.1", port, configuration=_client_tls())
            )
            reader, writer = await protocol.create_stream()
            writer.write(PAYLOAD)
            writer.write_eof()
            first = await reader.read(1)
            ttfb = time.perf_counter() - started
            rest = await reader.read()
            received = len(first) + len(rest)
        else:
            connection = await stack.enter_async_context(
                attquic.connect("127.0.0.1", port, configuration=_client_tls(), attestation=config)
            )
            stream = await connection.open_stream()
            await stream.send(PAYLOAD)
            await stream.send_eof()
            first = await stream.receive()
            ttfb = time.perf_counter() - started
            received = len(first) + len(await stream.receive_all())
        if received != len(PAYLOAD):
            raise RuntimeError(f"echo returned {received} bytes")
        task = asyncio.ensure_future(stack.aclose())  # the close drain is not measured
        closing.add(task)
        task.add_done_callback(closing.discard)
        return ttfb

    async def run(total: int) -> tuple[list[float], float]:
        remaining = total
        samples: list[float] = []

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                samples.append(await one())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return samples, time.perf_counter() - started

    await run(min(concurrency, 8))  # warm-up: imports, collateral, first quotes
    samples, elapsed = await run(count)
    await asyncio.gather(*closing, return_exceptions=True)
    return {
        "mode": mode,
        "concurrency": concurrency,
        "connections": len(samples),
        "conn_rate": len(samples) / elapsed,
        "ttfb_p50_ms": percentile(samples, 0.5) * 1000,
        "ttfb_p95_ms": percentile(samples, 0.95) * 1000,
    }


def _quiet() -> None:
    import logging

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # attquic logs through `logging`: this silences it


def _peer_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["server", "load"])
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--latency", type=float, default=LATENCY)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--cache", action="store_true")
    args = parser.parse_args(argv)
    _quiet()
    if args.role == "server":
        asyncio.run(_serve(args.mode, args.latency))
    else:
        result = asyncio.run(_load(args.mode, args.port, args.concurrency, args.count, args.cache))
        print(json.dumps(result), flush=True)


# --- the measurement (parent process) ------------------------------------------------------------


def _python() -> list[str]:
    return [sys.executable, str(Path(__file__).resolve())]


class _Server:
    def __init__(self, mode: str, latency: float) -> None:
        self.process = subprocess.Popen(
            [*_python(), "server", "--mode", mode, "--latency", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {mode} server did not start")
        self.port = int(json.loads(line)["port"])

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _load_run(mode: str, port: int, concurrency: int, count: int, cache: bool) -> Json:
    argv = [
        *_python(),
        "load",
        "--mode",
        mode,
        "--port",
        str(port),
        "--concurrency",
        str(concurrency),
        "--count",
        str(count),
    ]
    if cache:
        argv.append("--cache")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} load at {concurrency} failed: {done.stderr[-2000:]}")
    result: Json = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(preset: str = "quick", latency: float = LATENCY) -> Json:
    """Every mode at every concurrency of the preset; returns ``{"tdx_cost": ..., "detail": ...}``
    where ``tdx_cost`` holds exactly the summary keys of the benchmark report."""
    params = COST_PRESETS[preset]
    points: dict[str, dict[int, Json]] = {mode: {} for mode in MODES}
    cached: Json = {}
    for mode in MODES:
        server = _Server(mode, latency)
        try:
            for concurrency in params.concurrencies:
                count = params.connections[concurrency]
                if mode == "unbatched":
                    count = min(count, params.unbatched_cap)
                progress(f"tdx cost: {mode}, {count} connections, {concurrency} concurrent")
                points[mode][concurrency] = _load_run(
                    mode, server.port, concurrency, count, cache=False
                )
            if mode == "batched":
                top = max(params.concurrencies)
                progress(f"tdx cost: batched, verification cache on, {top} concurrent")
                cached = _load_run(mode, server.port, top, params.connections[top], cache=True)
        finally:
            server.stop()
    top = max(params.concurrencies)  # 64, except in the smoke preset
    at64 = {mode: points[mode][top] for mode in MODES}
    single = {mode: points[mode][1] for mode in MODES}
    summary = {
        "latency_ms": latency * 1000,
        "plain_conn_rate": at64["plain"]["conn_rate"],
        "unbatched_conn_rate": at64["unbatched"]["conn_rate"],
        "batched_conn_rate": at64["batched"]["conn_rate"],
        "batched_cached_conn_rate": cached["conn_rate"],
        "conn_rate_ratio": at64["batched"]["conn_rate"] / at64["plain"]["conn_rate"],
        "batched_ttfb_p95_ms": at64["batched"]["ttfb_p95_ms"],
        "plain_ttfb_p95_ms": at64["plain"]["ttfb_p95_ms"],
        "unbatched_ttfb_p95_ms": at64["unbatched"]["ttfb_p95_ms"],
        "single_ttfb_ms": single["batched"]["ttfb_p50_ms"],
        "unbatched_single_ttfb_ms": single["unbatched"]["ttfb_p50_ms"],
        "plain_single_ttfb_ms": single["plain"]["ttfb_p50_ms"],
    }
    detail = {
        "preset": preset,
        "top_concurrency": top,
        "points": {mode: [points[mode][c] for c in params.concurrencies] for mode in MODES},
        "batched_cached_64": cached,
        "goals": goals(summary),
    }
    return {"tdx_cost": summary, "detail": detail}


TDX_GOALS = {  # name: (what, met?)
    "conn_rate_ratio >= 0.5": "batched connections/s at 64 concurrent, against plain aioquic",
    "batched p95 <= 3x plain p95": "TTFB p95 at 64 concurrent",
    "single batched <= unbatched + 2 ms": "TTFB of one client alone",
}


def goals(summary: Json) -> Json:
    checks = {
        "conn_rate_ratio >= 0.5": summary["conn_rate_ratio"] >= 0.5,
        "batched p95 <= 3x plain p95": summary["batched_ttfb_p95_ms"]
        <= 3 * summary["plain_ttfb_p95_ms"],
        "single batched <= unbatched + 2 ms": summary["single_ttfb_ms"]
        <= summary["unbatched_single_ttfb_ms"] + 2,
    }
    return {name: {"what": TDX_GOALS[name], "met": met} for name, met in checks.items()}


def rows(summary: Json, top: int = 64) -> list[tuple[str, str, str, str]]:
    """(metric, plain aioquic, attquic unbatched, attquic batched) rows."""
    s = summary
    return [
        (
            f"connections/s, {top} concurrent",
            f"{s['plain_conn_rate']:.0f}",
            f"{s['unbatched_conn_rate']:.1f}",
            f"{s['batched_conn_rate']:.0f} ({s['conn_rate_ratio']:.2f}x plain; "
            f"{s['batched_cached_conn_rate']:.0f} with the verification cache)",
        ),
        (
            f"TTFB p95, {top} concurrent (ms)",
            f"{s['plain_ttfb_p95_ms']:.1f}",
            f"{s['unbatched_ttfb_p95_ms']:.0f}",
            f"{s['batched_ttfb_p95_ms']:.1f}",
        ),
        (
            "TTFB, one client (ms, median)",
            f"{s['plain_single_ttfb_ms']:.1f}",
            f"{s['unbatched_single_ttfb_ms']:.1f}",
            f"{s['single_ttfb_ms']:.1f}",
        ),
    ]


def markdown(result: Json) -> str:
    summary = result["tdx_cost"]
    lines = [
        f"Real TDX cost model: each quote {summary['latency_ms']:.0f} ms, one at a time per "
        "host; verification cache off unless stated.",
        "",
        "| metric | plain aioquic | attquic unbatched | attquic batched |",
        "|---|---:|---:|---:|",
        *(
            f"| {' | '.join(row)} |"
            for row in rows(summary, result["detail"].get("top_concurrency", 64))
        ),
        "",
        "| goal | met |",
        "|---|---|",
        *(
            f"| {name} ({goal['what']}) | {'met' if goal['met'] else 'MISSED'} |"
            for name, goal in result["detail"]["goals"].items()
        ),
    ]
    return "\n".join(lines)


def plot(result: Json, path: Path, title: str) -> Path:
    """Connections/s against concurrency, the three modes (PNG, log-scaled rate axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    labels = {
        "plain": "plain aioquic",
        "unbatched": "attquic, one quote per connection",
        "batched": "attquic, batched evidence",
    }
    for mode, points in result["detail"]["points"].items():
        xs = [p["concurrency"] for p in points]
        axis.plot(xs, [p["conn_rate"] for p in points], marker="o", label=labels[mode])
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("concurrent clients (closed loop)")
    axis.set_ylabel("connections/s (to first echoed byte)")
    axis.legend(fontsize=8)
    axis.grid(True, which="both", alpha=0.3)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("server", "load"):
        _peer_main(sys.argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_const", dest="preset", const="quick")
    parser.add_argument("--smoke", action="store_const", dest="preset", const="smoke")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot", type=Path, help="write the connections/s plot here (PNG)")
    args = parser.parse_args()
    result = measure(args.preset or "full")
    if args.plot:
        plot(result, args.plot, "attquic at real TDX cost (39 ms quotes, one at a time)")
    print(json.dumps(result) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
