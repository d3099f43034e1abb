"""Time to first byte of several source trees, interleaved: did a change move the ratio?

    python benchmarks/compare.py ROUNDS PER_ROUND NAME=TREE[:MODE] ...

Each NAME=TREE[:MODE] starts a server and a client process (``TREE/benchmarks/peers.py`` with
``TREE`` first on ``PYTHONPATH``, so each runs its own attquic) in ``MODE`` (``attested``,
default, or ``plain``). Every round measures PER_ROUND sequential connections of each variant;
the order rotates every round (and reverses every full rotation), so no variant always runs
right after another. The first variant is the baseline of the ratios.

    python benchmarks/compare.py 12 40 plain=.:plain before=../old-checkout after=.

prints, per variant, the median TTFB, its ratio to the first variant, the CPU time of both
processes per connection (psutil; steadier than wall time on a busy machine) and the median
TTFB split (see docs/benchmarks.md, method row 1). ``HOLD=N`` opens and releases N idle
connections per variant first, as ``run.py``'s memory measurement does before its TTFB loop.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Peer


class TreePeer(Peer):
    """A ``peers.py`` process of another source tree."""

    def __init__(self, name: str, tree: Path, argv: list[str]) -> None:
        self.name = name
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.process = subprocess.Popen(
            [sys.executable, str(tree / "benchmarks" / "peers.py"), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=tree,
            env=env,
        )
        self._buffer = b""


class Variant:
    def __init__(self, spec: str) -> None:
        self.name, _, rest = spec.partition("=")
        tree, _, mode = rest.partition(":")
        mode = mode or "attested"
        self.tree = Path(tree).resolve()
        self.server = TreePeer(f"{self.name} server", self.tree, ["server", "--mode", mode])
        port = int(self.server.read(timeout=60)["port"])
        argv = ["client", "--mode", mode, "--port", str(port)]
        self.client = TreePeer(f"{self.name} client", self.tree, argv)
        self.client.read(timeout=60)
        self.ttfb: list[float] = []
        self.splits: list[dict[str, float]] = []
        self.cpu_s = 0.0

    def cpu(self) -> float:
        return self.client.cpu_seconds() + self.server.cpu_seconds()

    def stop(self) -> None:
        self.client.stop()
        self.server.stop()


def main(rounds: int, per_round: int, specs: list[str]) -> None:
    variants = [Variant(spec) for spec in specs]
    try:
        hold = int(os.environ.get("HOLD", "0"))
        for variant in variants:
            if hold:
                variant.client.request("hold", count=hold, payload_size=32)
                variant.client.request("release")
            variant.client.request("ttfb", count=10, payload_size=32)  # warm-up
        for index in range(rounds):
            shift = index % len(variants)
            order = variants[shift:] + variants[:shift]
            if (index // len(variants)) % 2:
                order.reverse()
            for variant in order:
                started = variant.cpu()
                result: dict[str, Any] = variant.client.request(
                    "ttfb", count=per_round, payload_size=32
                )
                variant.cpu_s += variant.cpu() - started
                variant.ttfb += [sample["ttfb_ms"] for sample in result["samples"]]
                variant.splits += [sample["split_ms"] for sample in result["samples"]]
        base = statistics.median(variants[0].ttfb)
        for variant in variants:
            median = statistics.median(variant.ttfb)
            split = {
                part: round(statistics.median(s[part] for s in variant.splits if part in s), 3)
                for part in variant.splits[0]
            }
            print(
                f"{variant.name:12s} TTFB median {median:7.3f} ms  ratio {median / base:5.3f}  "
                f"CPU/connection {variant.cpu_s / len(variant.ttfb) * 1000:6.2f} ms  "
                f"n={len(variant.ttfb)}  split {split}"
            )
    finally:
        for variant in variants:
            variant.stop()


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
