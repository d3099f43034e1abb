"""The benchmark harness runs end to end (tiny counts) and prints one valid JSON object.

No timing assertions: figures from a smoke run mean nothing. This checks that the processes
start, every measurement completes for plain aioquic and for attquic, and the report has the
documented shape.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RATIOS = ("ttfb_ratio", "bulk_ratio", "rtt_ratio", "verify_ratio", "verify_warm_ratio", "mem_ratio")

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``benchmarks/<script> args``, which must exit 0."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def test_smoke_run_prints_one_json_object(tmp_path: Path) -> None:
    completed = _run("run.py", "--smoke", "--json", "--out", str(tmp_path))
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1, completed.stdout[-2000:]
    report = json.loads(lines[0])

    for name in RATIOS:
        value = report[name]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (name, value)
        assert report["goals"][name]["met"] in (True, False)
    for mode in ("plain", "attested"):
        medians = report["medians"][mode]
        for key in (
            "ttfb_ms",
            "rtt_us",
            "bulk_up_mb_per_s",
            "bulk_down_mb_per_s",
            "connections_per_s_sequential",
            "connections_per_s_concurrent",
        ):
            assert medians[key] > 0, (mode, key)
        assert "server_bytes_per_connection" in medians
    assert set(report["medians"]["verify_per_s"]) == {"bare", "verify_quote", "tdx_verifier"}
    assert set(report["medians"]["verify_warm_per_s"]) == {
        "bare",
        "tdx_verifier_fast_path",
        "tdx_verifier_cached",
    }
    split = report["details"]["ttfb"]["attested"]["split_median_ms"]
    assert {"handshake", "after handshake", "verification", "evidence (server)"} <= set(split)
    assert "attestation messaging (rest)" in split
    # both modes are cut at the same points (connect -> HandshakeCompleted -> connect returned)
    plain_split = report["details"]["ttfb"]["plain"]["split_median_ms"]
    assert {"handshake", "after handshake", "echo"} <= set(plain_split)
    for key in ("cores", "python", "aioquic", "date"):
        assert report["machine"][key]
    assert report["preset"] == "smoke"

    # Results and the TTFB plot are written next to each other.
    results = Path(report["results"])
    plot = Path(report["plot"])
    assert results.parent == plot.parent == tmp_path
    assert json.loads(results.read_text())["ttfb_ratio"] == report["ttfb_ratio"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "progress" not in completed.stdout and "[bench" in completed.stderr

    # The real-TDX-cost section: exactly the documented keys, all finite and positive.
    assert set(report["tdx_cost"]) == {
        "latency_ms",
        "plain_conn_rate",
        "unbatched_conn_rate",
        "batched_conn_rate",
        "batched_cached_conn_rate",
        "conn_rate_ratio",
        "batched_ttfb_p95_ms",
        "plain_ttfb_p95_ms",
        "unbatched_ttfb_p95_ms",
        "single_ttfb_ms",
        "unbatched_single_ttfb_ms",
        "plain_single_ttfb_ms",
    }
    for key, value in report["tdx_cost"].items():
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)
    assert report["tdx_cost"]["latency_ms"] == pytest.approx(39.0)
    assert Path(report["tdx_cost_plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_runs_two_variants_of_this_tree() -> None:
    """benchmarks/compare.py (the interleaved TTFB comparison docs/benchmarks.md cites) starts a
    pair of processes per variant and prints one line per variant, the first as baseline."""
    completed = _run("compare.py", "2", "3", f"plain={ROOT}:plain", f"attested={ROOT}")
    lines = completed.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["plain", "attested"]
    assert "ratio 1.000" in lines[0]
    assert "n=6" in lines[1] and "'verification'" in lines[1]
