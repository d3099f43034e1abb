"""What does attestation cost? attquic against plain aioquic and bare dcap-qvl, in one run.

    python benchmarks/run.py            # the full set (make bench): a table on stdout
    python benchmarks/run.py --quick --json   # < 60 s on 2 cores: one JSON object on stdout

Servers and clients are separate processes talking UDP over loopback (benchmarks/peers.py);
plain and attested measurements alternate in rounds (the TTFB loop every ten connections) so
that machine noise hits both alike.
Progress goes to stderr. The results (JSON, a Markdown table and the TTFB plot, PNG) are
written to benchmarks/results/. Figures are only comparable within one run: read the ratios.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import tdx_cost
from harness import MODES, Pair, progress, summary

Json = dict[str, Any]
RESULTS = Path(__file__).resolve().parent / "results"
MB = 1_000_000


@dataclass(frozen=True)
class Params:
    rounds: int
    """Plain and attested alternate this many times for each network measurement."""
    warmup: int
    mem_connections: int
    ttfb_per_round: int
    """Connections per mode and round, measured in blocks of ``ttfb_block`` that alternate."""
    concurrency: int
    concurrent_per_round: int
    rtt_per_round: int
    bulk_bytes: int
    bulk_rounds: int
    verify_seconds: float
    payload: int = 32
    ttfb_block: int = 10


PRESETS = {
    "full": Params(
        rounds=4,
        warmup=20,
        mem_connections=1000,
        ttfb_per_round=150,
        concurrency=16,
        concurrent_per_round=200,
        rtt_per_round=1000,
        bulk_bytes=50 * MB,
        bulk_rounds=4,
        verify_seconds=12,
    ),
    "quick": Params(
        rounds=2,
        warmup=10,
        mem_connections=200,
        ttfb_per_round=60,
        concurrency=8,
        concurrent_per_round=48,
        rtt_per_round=300,
        bulk_bytes=5 * MB,
        bulk_rounds=4,
        verify_seconds=3,
    ),
    "smoke": Params(
        rounds=1,
        warmup=2,
        mem_connections=8,
        ttfb_per_round=5,
        concurrency=2,
        concurrent_per_round=6,
        rtt_per_round=20,
        bulk_bytes=MB,
        bulk_rounds=1,
        verify_seconds=0.3,
    ),
}

GOALS = {  # ratio name: (comparison, bound, what)
    "ttfb_ratio": ("<=", 1.5, "time to first byte, median"),
    "bulk_ratio": (">=", 0.95, "bulk throughput, one stream (worse direction)"),
    "rtt_ratio": ("<=", 1.05, "echo round trip, median"),
    "verify_ratio": (">=", 0.9, "quote verifications/s, warm collateral"),
    "verify_warm_ratio": (">=", 3.0, "quote verifications/s, warm platform (fast path)"),
    "mem_ratio": ("<=", 1.5, "server memory per idle connection"),
}


# --- the measurements ---------------------------------------------------------------------------


def alternating(round_index: int) -> tuple[str, ...]:
    """Plain first in even rounds, attested first in odd ones."""
    return MODES if round_index % 2 == 0 else tuple(reversed(MODES))


def measure_memory(pairs: dict[str, Pair], params: Params) -> Json:
    out: Json = {}
    for mode in MODES:
        pair = pairs[mode]
        progress(f"memory: {mode}, opening {params.mem_connections} idle connections")
        before = pair.server_rss_after_gc()
        held = pair.client.request(
            "hold", count=params.mem_connections, payload_size=params.payload
        )
        after = pair.server_rss_after_gc()
        pair.client.request("release")
        out[mode] = {
            "connections": held["held"],
            "server_rss_before": before,
            "server_rss_after": after,
            "server_bytes_per_connection": (after - before) / held["held"],
            "client_bytes_per_connection": held["client_rss_delta"] / held["held"],
        }
    return out


def measure_ttfb(pairs: dict[str, Pair], params: Params) -> Json:
    """Sequential connections, the two modes alternating every ``ttfb_block`` connections.

    This machine's speed drifts by tens of percent within a minute; blocks of ten connections,
    plain first in one block pair and attested first in the next, spread that drift evenly
    over both modes (rounds of 60-150 connections per mode let it favour either).
    """
    pairs["attested"].server.request("stats")  # forget warm-up/memory connections
    samples: dict[str, list[Json]] = {mode: [] for mode in MODES}
    elapsed = dict.fromkeys(MODES, 0.0)
    block = max(1, min(params.ttfb_block, params.ttfb_per_round))
    blocks = -(-params.ttfb_per_round // block)  # per round and mode
    for index in range(params.rounds):
        progress(
            f"ttfb: round {index + 1}/{params.rounds}, {params.ttfb_per_round} sequential "
            f"connections per mode, alternating every {block}"
        )
        for step in range(blocks):
            count = min(block, params.ttfb_per_round - step * block)
            for mode in alternating(index * blocks + step):
                result = pairs[mode].client.request(
                    "ttfb", count=count, payload_size=params.payload
                )
                samples[mode] += result["samples"]
                elapsed[mode] += result["elapsed_s"]
    evidence = pairs["attested"].server.request("stats")["evidence_ms"]
    out: Json = {}
    for mode in MODES:
        ttfb = [s["ttfb_ms"] for s in samples[mode]]
        parts: dict[str, list[float]] = {}
        for sample in samples[mode]:
            for name, value in sample["split_ms"].items():
                parts.setdefault(name, []).append(value)
        if mode == "attested":
            parts["evidence (server)"] = evidence
        split = {name: statistics.median(values) for name, values in parts.items() if values}
        if mode == "attested" and {"after handshake", "verification", "evidence (server)"} <= set(
            split
        ):
            split["attestation messaging (rest)"] = (
                split["after handshake"] - split["verification"] - split["evidence (server)"]
            )
        out[mode] = {
            "ttfb_ms": summary(ttfb),
            "split_median_ms": split,
            "sequential_connections_per_s": len(ttfb) / elapsed[mode],
            "samples_ms": ttfb,
        }
    return out


def measure_concurrent(pairs: dict[str, Pair], params: Params) -> Json:
    count = dict.fromkeys(MODES, 0)
    elapsed = dict.fromkeys(MODES, 0.0)
    for index in range(params.rounds):
        for mode in alternating(index):
            progress(
                f"connections/s: round {index + 1}/{params.rounds}, {mode}, "
                f"{params.concurrent_per_round} with {params.concurrency} concurrent clients"
            )
            result = pairs[mode].client.request(
                "concurrent",
                count=params.concurrent_per_round,
                concurrency=params.concurrency,
                payload_size=params.payload,
            )
            count[mode] += result["count"]
            elapsed[mode] += result["elapsed_s"]
    return {
        mode: {"concurrency": params.concurrency, "connections_per_s": count[mode] / elapsed[mode]}
        for mode in MODES
    }


def measure_rtt(pairs: dict[str, Pair], params: Params) -> Json:
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    for index in range(params.rounds):
        for mode in alternating(index):
            progress(
                f"rtt: round {index + 1}/{params.rounds}, {mode}, "
                f"{params.rtt_per_round} echoes of {params.payload} B"
            )
            result = pairs[mode].client.request(
                "rtt", count=params.rtt_per_round, size=params.payload
            )
            samples[mode] += result["samples_us"]
    return {mode: {"rtt_us": summary(samples[mode])} for mode in MODES}


def measure_bulk(pairs: dict[str, Pair], params: Params) -> Json:
    rates: dict[str, dict[str, list[float]]] = {m: {"up": [], "down": []} for m in MODES}
    cpu_us_per_mb: dict[str, dict[str, list[float]]] = {m: {"up": [], "down": []} for m in MODES}
    size_mb = params.bulk_bytes / MB
    for index in range(params.bulk_rounds):
        for direction in ("up", "down"):
            for mode in alternating(index):
                progress(
                    f"bulk: round {index + 1}/{params.bulk_rounds}, {mode}, {size_mb:.0f} MB "
                    f"{'client to server' if direction == 'up' else 'server to client'}"
                )
                server_cpu = pairs[mode].server.cpu_seconds()
                result = pairs[mode].client.request(
                    "bulk", size=params.bulk_bytes, direction=direction
                )
                server_cpu = pairs[mode].server.cpu_seconds() - server_cpu
                rates[mode][direction].append(result["mb_per_s"])
                cpu_us_per_mb[mode][direction].append(
                    (server_cpu + result["client_cpu_s"]) / size_mb * 1e6
                )
    return {
        mode: {
            "bytes": params.bulk_bytes,
            "up_mb_per_s": statistics.median(rates[mode]["up"]),
            "down_mb_per_s": statistics.median(rates[mode]["down"]),
            "runs": rates[mode],
            "up_cpu_ms_per_mb": statistics.median(cpu_us_per_mb[mode]["up"]) / 1000,
            "down_cpu_ms_per_mb": statistics.median(cpu_us_per_mb[mode]["down"]) / 1000,
        }
        for mode in MODES
    }


def measure_verify(params: Params) -> Json:
    import peers
    import verify

    peers.configure_logging()
    progress(f"verification: {params.verify_seconds:.0f} s of interleaved loops")
    return verify.run(params.verify_seconds)


# --- putting it together ------------------------------------------------------------------------


def machine() -> Json:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu": model,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "aioquic": importlib.metadata.version("aioquic"),
        "dcap_qvl": importlib.metadata.version("dcap-qvl"),
        "attquic": importlib.metadata.version("attquic"),
        "event_loop": "asyncio",
    }


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def derive(results: Json) -> Json:
    ttfb, bulk, rtt = results["ttfb"], results["bulk"], results["rtt"]
    verify_rates, memory = results["verify"]["per_second"], results["memory"]
    up = ratio(bulk["attested"]["up_mb_per_s"], bulk["plain"]["up_mb_per_s"])
    down = ratio(bulk["attested"]["down_mb_per_s"], bulk["plain"]["down_mb_per_s"])
    ratios = {
        "ttfb_ratio": ratio(
            ttfb["attested"]["ttfb_ms"]["median"], ttfb["plain"]["ttfb_ms"]["median"]
        ),
        "ttfb_p95_ratio": ratio(
            ttfb["attested"]["ttfb_ms"]["p95"], ttfb["plain"]["ttfb_ms"]["p95"]
        ),
        "bulk_ratio": min(up, down),
        "bulk_up_ratio": up,
        "bulk_down_ratio": down,
        "rtt_ratio": ratio(rtt["attested"]["rtt_us"]["median"], rtt["plain"]["rtt_us"]["median"]),
        "verify_ratio": ratio(verify_rates["tdx_verifier"], verify_rates["bare"]),
        "verify_quote_ratio": ratio(verify_rates["verify_quote"], verify_rates["bare"]),
        **derive_verify_warm(results["verify"]),
        "mem_ratio": ratio(
            memory["attested"]["server_bytes_per_connection"],
            memory["plain"]["server_bytes_per_connection"],
        ),
        "conn_rate_ratio": ratio(
            ttfb["attested"]["sequential_connections_per_s"],
            ttfb["plain"]["sequential_connections_per_s"],
        ),
        "conn_rate_concurrent_ratio": ratio(
            results["concurrent"]["attested"]["connections_per_s"],
            results["concurrent"]["plain"]["connections_per_s"],
        ),
    }
    medians = {}
    for mode in MODES:
        medians[mode] = {
            "ttfb_ms": ttfb[mode]["ttfb_ms"]["median"],
            "ttfb_p95_ms": ttfb[mode]["ttfb_ms"]["p95"],
            "connections_per_s_sequential": ttfb[mode]["sequential_connections_per_s"],
            "connections_per_s_concurrent": results["concurrent"][mode]["connections_per_s"],
            "bulk_up_mb_per_s": bulk[mode]["up_mb_per_s"],
            "bulk_down_mb_per_s": bulk[mode]["down_mb_per_s"],
            "bulk_up_cpu_ms_per_mb": bulk[mode]["up_cpu_ms_per_mb"],
            "bulk_down_cpu_ms_per_mb": bulk[mode]["down_cpu_ms_per_mb"],
            "rtt_us": rtt[mode]["rtt_us"]["median"],
            "rtt_p95_us": rtt[mode]["rtt_us"]["p95"],
            "server_bytes_per_connection": memory[mode]["server_bytes_per_connection"],
            "client_bytes_per_connection": memory[mode]["client_bytes_per_connection"],
        }
    medians["verify_per_s"] = verify_rates
    medians["verify_warm_per_s"] = results["verify"]["warm_per_second"]
    goals = {}
    for name, (op, bound, what) in GOALS.items():
        value = ratios[name]
        met = value <= bound if op == "<=" else value >= bound
        goals[name] = {"ratio": value, "goal": f"{op} {bound}", "met": met, "what": what}
    return {**ratios, "medians": medians, "goals": goals}


def derive_verify_warm(verify_results: Json) -> Json:
    """The warm-verifier ratios (benchmarks/verify.py): fast path and evidence cache vs bare."""
    warm = verify_results["warm_per_second"]
    return {
        "verify_warm_ratio": ratio(warm["tdx_verifier_fast_path"], warm["bare"]),
        "verify_cached_ratio": ratio(warm["tdx_verifier_cached"], warm["bare"]),
    }


def run(params: Params, preset: str, out_dir: Path, plot: bool) -> Json:
    started = time.perf_counter()
    facts = machine()
    progress(
        f"preset {preset}: {facts['cores']} cores, Python {facts['python']}, "
        f"aioquic {facts['aioquic']}, load {facts['load_average']}"
    )
    pairs: dict[str, Pair] = {}
    try:
        for mode in MODES:
            pairs[mode] = Pair(mode)
        for mode in MODES:
            progress(f"warm-up: {mode}, {params.warmup} connections")
            pairs[mode].client.request("ttfb", count=params.warmup, payload_size=params.payload)
        results: Json = {"memory": measure_memory(pairs, params)}
        results["ttfb"] = measure_ttfb(pairs, params)
        results["concurrent"] = measure_concurrent(pairs, params)
        results["rtt"] = measure_rtt(pairs, params)
        results["bulk"] = measure_bulk(pairs, params)
    finally:
        for pair in pairs.values():
            pair.stop()
    results["verify"] = measure_verify(params)
    cost = tdx_cost.measure(preset)
    report: Json = derive(results)
    report["tdx_cost"] = cost["tdx_cost"]
    report["tdx_cost_detail"] = cost["detail"]
    report.update(
        preset=preset,
        machine=facts,
        params=asdict(params),
        command=" ".join(["python", "benchmarks/run.py", *sys.argv[1:]]),
        duration_s=round(time.perf_counter() - started, 1),
        details=results,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    if plot and importlib.util.find_spec("matplotlib") is None:
        progress("matplotlib is missing (pip install -e '.[bench]'): no TTFB plot this time")
    elif plot:
        import plot as plotting

        report["plot"] = str(
            plotting.plot_ttfb(
                results["ttfb"]["plain"]["samples_ms"],
                results["ttfb"]["attested"]["samples_ms"],
                out_dir / f"{stem}-ttfb.png",
                f"Time to first byte, {len(results['ttfb']['plain']['samples_ms'])} connections "
                f"each ({facts['date']}, {facts['cores']} cores, Python {facts['python']}, "
                f"aioquic {facts['aioquic']})",
            )
        )
    if plot and importlib.util.find_spec("matplotlib") is not None:
        report["tdx_cost_plot"] = str(
            tdx_cost.plot(
                cost,
                out_dir / f"{stem}-tdx-cost.png",
                f"Connections/s at real TDX cost (39 ms quotes, one at a time), {facts['date']}, "
                f"{facts['cores']} cores",
            )
        )
    report["results"] = str(out_dir / f"{stem}.json")
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown(report) + "\n")
    progress(f"done in {report['duration_s']} s; results in {report['results']}")
    return report


# --- presentation -------------------------------------------------------------------------------


def verify_warm_rows(
    report: Json, goal: Callable[[str], str]
) -> list[tuple[str, str, str, str, str]]:
    """Rows for the warm verifier: fast path (fresh quote, known platform) and evidence cache."""
    w = report["medians"]["verify_warm_per_s"]
    return [
        (
            "  warm platform, fresh quotes (fast path)",
            f"{w['bare']:.0f}",
            f"{w['tdx_verifier_fast_path']:.0f}",
            f"{report['verify_warm_ratio']:.2f}",
            goal("verify_warm_ratio"),
        ),
        (
            "  same quote again (verification cache)",
            f"{w['bare']:.0f}",
            f"{w['tdx_verifier_cached']:.0f}",
            f"{report['verify_cached_ratio']:.2f}",
            "",
        ),
    ]


def rows(report: Json) -> list[tuple[str, str, str, str, str]]:
    """(metric, plain, attquic, ratio, goal) rows of the summary table."""
    m, p, a = report["medians"], report["medians"]["plain"], report["medians"]["attested"]
    goals = report["goals"]

    def goal(name: str) -> str:
        entry = goals[name]
        return f"{entry['goal']} {'met' if entry['met'] else 'MISSED'}"

    v = m["verify_per_s"]
    conc = report["details"]["concurrent"]["plain"]["concurrency"]
    mem_n = report["details"]["memory"]["plain"]["connections"]
    worse_bulk = "up" if report["bulk_up_ratio"] <= report["bulk_down_ratio"] else "down"
    return [
        (
            "TTFB median (ms)",
            f"{p['ttfb_ms']:.2f}",
            f"{a['ttfb_ms']:.2f}",
            f"{report['ttfb_ratio']:.2f}",
            goal("ttfb_ratio"),
        ),
        (
            "TTFB p95 (ms)",
            f"{p['ttfb_p95_ms']:.2f}",
            f"{a['ttfb_p95_ms']:.2f}",
            f"{report['ttfb_p95_ratio']:.2f}",
            "",
        ),
        (
            "connections/s, sequential",
            f"{p['connections_per_s_sequential']:.0f}",
            f"{a['connections_per_s_sequential']:.0f}",
            f"{report['conn_rate_ratio']:.2f}",
            "",
        ),
        (
            f"connections/s, {conc} concurrent",
            f"{p['connections_per_s_concurrent']:.0f}",
            f"{a['connections_per_s_concurrent']:.0f}",
            f"{report['conn_rate_concurrent_ratio']:.2f}",
            "",
        ),
        *(
            (
                f"bulk {direction}, one stream (MB/s)",
                f"{p[f'bulk_{direction}_mb_per_s']:.1f}",
                f"{a[f'bulk_{direction}_mb_per_s']:.1f}",
                f"{report[f'bulk_{direction}_ratio']:.2f}",
                # the goal is on the worse direction: its row carries the verdict
                goal("bulk_ratio") if direction == worse_bulk else "",
            )
            for direction in ("up", "down")
        ),
        (
            "bulk CPU, both processes (ms per MB, up / down)",
            f"{p['bulk_up_cpu_ms_per_mb']:.1f} / {p['bulk_down_cpu_ms_per_mb']:.1f}",
            f"{a['bulk_up_cpu_ms_per_mb']:.1f} / {a['bulk_down_cpu_ms_per_mb']:.1f}",
            f"{ratio(a['bulk_up_cpu_ms_per_mb'], p['bulk_up_cpu_ms_per_mb']):.2f} / "
            f"{ratio(a['bulk_down_cpu_ms_per_mb'], p['bulk_down_cpu_ms_per_mb']):.2f}",
            "",
        ),
        (
            "echo RTT median (µs)",
            f"{p['rtt_us']:.0f}",
            f"{a['rtt_us']:.0f}",
            f"{report['rtt_ratio']:.2f}",
            goal("rtt_ratio"),
        ),
        ("echo RTT p95 (µs)", f"{p['rtt_p95_us']:.0f}", f"{a['rtt_p95_us']:.0f}", "", ""),
        (
            "quote verifications/s, cold (bare dcap-qvl vs TdxVerifier, caches off)",
            f"{v['bare']:.0f}",
            f"{v['tdx_verifier']:.0f}",
            f"{report['verify_ratio']:.2f}",
            goal("verify_ratio"),
        ),
        (
            "  same, sync verify_quote",
            f"{v['bare']:.0f}",
            f"{v['verify_quote']:.0f}",
            f"{report['verify_quote_ratio']:.2f}",
            "",
        ),
        *verify_warm_rows(report, goal),
        (
            f"server KiB per idle connection ({mem_n} open)",
            f"{p['server_bytes_per_connection'] / 1024:.1f}",
            f"{a['server_bytes_per_connection'] / 1024:.1f}",
            f"{report['mem_ratio']:.2f}",
            goal("mem_ratio"),
        ),
        (
            f"client KiB per idle connection ({mem_n} open)",
            f"{p['client_bytes_per_connection'] / 1024:.1f}",
            f"{a['client_bytes_per_connection'] / 1024:.1f}",
            f"{ratio(a['client_bytes_per_connection'], p['client_bytes_per_connection']):.2f}",
            "",
        ),
    ]


def split_rows(report: Json) -> list[tuple[str, str]]:
    """The TTFB split, both modes cut at the same points: connect() -> client HandshakeCompleted
    ("handshake"), HandshakeCompleted -> connect() returned ("after handshake": the waiter's
    wake-up for plain, attestation and the gate for attquic), then the echo."""
    split = report["details"]["ttfb"]["attested"]["split_median_ms"]
    plain = report["details"]["ttfb"]["plain"]["split_median_ms"]
    out = []
    for name, label in (
        ("handshake", "handshake"),
        ("after handshake", "handshake -> connect() returned"),
        ("echo", "echo"),
    ):
        if name in plain:
            out.append((f"plain: {label}", f"{plain[name]:.2f}"))
    for name, label in (
        ("handshake", "handshake"),
        ("after handshake", "attestation (handshake -> connect() returned)"),
        ("evidence (server)", "evidence (server)"),
        ("verification", "verification"),
        ("attestation messaging (rest)", "attestation messaging (rest)"),
        ("echo", "echo"),
    ):
        if name in split:
            out.append((f"attquic: {label}", f"{split[name]:.2f}"))
    return out


def markdown(report: Json) -> str:
    facts = report["machine"]
    lines = [
        f"Measured {facts['date']} on {facts['cores']} cores ({facts['cpu']}), "
        f"Python {facts['python']}, aioquic {facts['aioquic']}, dcap-qvl {facts['dcap_qvl']}, "
        f"asyncio; load average at start {facts['load_average']}. Command: "
        f"`{report['command']}` ({report['preset']} preset, {report['duration_s']} s).",
        "",
        "| metric | plain aioquic | attquic | ratio | goal |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows(report)]
    lines += [
        "",
        "Time to first byte, attested, split (medians, ms):",
        "",
        "| part | ms |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {value} |" for name, value in split_rows(report)]
    lines += [
        "",
        tdx_cost.markdown({"tdx_cost": report["tdx_cost"], "detail": report["tdx_cost_detail"]}),
    ]
    return "\n".join(lines)


def table(report: Json) -> str:
    header = ("metric", "plain aioquic", "attquic", "ratio", "goal")
    body = rows(report)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(5)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    facts = report["machine"]
    lines = [
        f"attquic benchmarks, {facts['date']}: {facts['cores']} cores ({facts['cpu']}), "
        f"Python {facts['python']}, aioquic {facts['aioquic']}, dcap-qvl {facts['dcap_qvl']}",
        "",
        fmt.format(*header),
        "  ".join("-" * w for w in widths),
        *(fmt.format(*row) for row in body),
        "",
        "time to first byte, split (medians):",
        *(f"  {name:<56} {value:>8} ms" for name, value in split_rows(report)),
        "",
        "",
        tdx_cost.markdown({"tdx_cost": report["tdx_cost"], "detail": report["tdx_cost_detail"]}),
        "",
        f"results: {report['results']}",
    ]
    if "plot" in report:
        lines.append(f"plot:    {report['plot']}")
    if "tdx_cost_plot" in report:
        lines.append(f"plot:    {report['tdx_cost_plot']}")
    return "\n".join(lines)


def compact(report: Json) -> Json:
    """The --json object: everything but the raw samples."""
    slim = json.loads(json.dumps(report))
    for mode in MODES:
        slim["details"]["ttfb"][mode].pop("samples_ms", None)
    return slim


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument(
        "--quick",
        action="store_const",
        dest="preset",
        const="quick",
        help="reduced counts, under 60 s on 2 cores",
    )
    preset.add_argument(
        "--smoke",
        action="store_const",
        dest="preset",
        const="smoke",
        help="tiny counts: checks the harness end to end, figures meaningless",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--no-plot", action="store_true", help="skip the TTFB plot")
    args = parser.parse_args()
    name = args.preset or "full"
    report = run(PRESETS[name], name, args.out, plot=not args.no_plot)
    if args.json:
        print(json.dumps(compact(report)))
    else:
        print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
