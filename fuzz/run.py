"""Run the atheris harnesses in this directory and print each campaign's figures.

    python fuzz/run.py                      # every harness, 60 s each, one at a time
    python fuzz/run.py --seconds 600 --jobs 2 frames cmw

Each harness starts from a fresh copy of its seeds (written by the harness itself) plus the
corpus kept under fuzz/.corpus/<name>/ from earlier runs. A crash (anything but a project
error escaping a decoder) stops that harness and leaves the input in fuzz/artifacts/. The exit
status is 1 if any harness crashed. Needs the optional ``fuzz`` extra (atheris).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = {
    "frames": ("fuzz_frames.py", 4096),
    "ea": ("fuzz_ea.py", 8192),
    "cmw": ("fuzz_cmw.py", 8192),
    "expat": ("fuzz_expat.py", 8192),
    "tdx_quote": ("fuzz_tdx_quote.py", 16384),
    "ear": ("fuzz_ear.py", 8192),
}
_DONE = re.compile(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)")
_STAT = re.compile(r"stat::(\w+):\s+(\d+)")


def _write_seeds(script: Path, corpus: Path) -> None:
    subprocess.run([sys.executable, str(script), "--write-seeds", str(corpus)], check=True)


def run_one(name: str, seconds: int) -> dict[str, object]:
    """Fuzz one harness for ``seconds``; its libFuzzer figures as a dict."""
    script_name, max_len = HARNESSES[name]
    script = HERE / script_name
    corpus = HERE / ".corpus" / name
    artifacts = HERE / "artifacts"
    artifacts.mkdir(exist_ok=True)
    _write_seeds(script, corpus)
    log = HERE / ".corpus" / f"{name}.log"
    started = time.monotonic()
    with log.open("w") as out:
        completed = subprocess.run(
            [
                sys.executable,
                str(script),
                str(corpus),
                f"-max_total_time={seconds}",
                f"-max_len={max_len}",
                "-timeout=10",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
                f"-artifact_prefix={artifacts}/{name}-",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=HERE,
        )
    text = log.read_text(errors="replace")
    figures: dict[str, object] = {
        "harness": name,
        "seconds": round(time.monotonic() - started),
        "exit_status": completed.returncode,
        "crashed": completed.returncode != 0,
    }
    done = _DONE.findall(text)
    if done:
        _runs, cov, ft, corp = done[-1]
        figures.update(coverage=int(cov), features=int(ft), corpus=int(corp))
    stats = dict(_STAT.findall(text))
    if stats:
        figures["executions"] = int(stats.get("number_of_executed_units", 0))
        figures["exec_per_second"] = int(stats.get("average_exec_per_sec", 0))
        figures["new_units"] = int(stats.get("new_units_added", 0))
        figures["peak_rss_mb"] = int(stats.get("peak_rss_mb", 0))
    if figures["crashed"]:
        figures["log"] = str(log)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[*HARNESSES, []], help="harnesses to run")
    parser.add_argument("--seconds", type=int, default=60, help="time per harness")
    parser.add_argument("--jobs", type=int, default=1, help="harnesses run at the same time")
    args = parser.parse_args(argv)
    names = args.names or list(HARNESSES)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda name: run_one(name, args.seconds), names))
    for figures in results:
        print(json.dumps(figures))
    return 1 if any(figures["crashed"] for figures in results) else 0


if __name__ == "__main__":
    sys.exit(main())
