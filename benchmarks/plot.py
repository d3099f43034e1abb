"""The time-to-first-byte plot: distribution of plain aioquic against attquic (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from harness import percentile

COLOURS = {"plain aioquic": "#4c72b0", "attquic (simulated TDX + DCAP)": "#dd8452"}


def plot_ttfb(
    plain_ms: Sequence[float], attested_ms: Sequence[float], path: Path, title: str
) -> Path:
    """Histogram and empirical CDF of both TTFB samples, medians marked; returns ``path``."""
    series = {
        "plain aioquic": sorted(plain_ms),
        "attquic (simulated TDX + DCAP)": sorted(attested_ms),
    }
    everything = [v for values in series.values() for v in values]
    upper = percentile(everything, 0.99) * 1.05
    lower = min(everything) * 0.95
    bins = [lower + (upper - lower) * i / 60 for i in range(61)]

    figure, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, values in series.items():
        colour = COLOURS[label]
        median = percentile(values, 0.5)
        hist.hist(
            [min(v, upper) for v in values],
            bins=bins,
            alpha=0.6,
            color=colour,
            label=f"{label}: median {median:.2f} ms",
        )
        hist.axvline(median, color=colour, linestyle="--", linewidth=1)
        n = len(values)
        cdf.step(values, [(i + 1) / n for i in range(n)], where="post", color=colour, label=label)
        cdf.axvline(percentile(values, 0.95), color=colour, linestyle=":", linewidth=1)
    hist.set_xlabel("time to first echoed byte on a new connection (ms)")
    hist.set_ylabel("connections")
    hist.legend(fontsize=8)
    cdf.set_xlabel("ms (dotted: p95)")
    cdf.set_ylabel("fraction of connections")
    cdf.set_xlim(lower, upper)
    cdf.legend(fontsize=8, loc="lower right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
