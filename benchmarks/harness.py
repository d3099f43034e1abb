"""Process plumbing and statistics for the benchmarks.

A :class:`Peer` is one ``benchmarks/peers.py`` process driven by JSON lines over its
stdin/stdout; a :class:`Pair` is a server process and a client process of one mode.
"""

from __future__ import annotations

import json
import os
import selectors
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    import attquic

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers.py"
MODES = ("plain", "attested")

Json = dict[str, Any]


class PeerError(RuntimeError):
    """A peer process failed, answered with an error, or did not answer in time."""


class Peer:
    """One peer process; :meth:`request` sends a command and waits for its answer."""

    def __init__(self, name: str, argv: Sequence[str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(PEERS), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # progress and banners go straight to our stderr
            cwd=HERE.parent,
        )
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.process.pid

    def read(self, timeout: float) -> Json:
        """The next JSON line the peer writes."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise PeerError(f"{self.name}: no answer within {timeout:.0f} s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise PeerError(f"{self.name}: exited (code {self.process.wait()})")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: Json = json.loads(line)
        if "error" in answer:
            raise PeerError(f"{self.name}: {answer['error']}")
        return answer

    def request(self, cmd: str, timeout: float = 600.0, **params: Any) -> Json:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"cmd": cmd, **params}) + "\n").encode())
        self.process.stdin.flush()
        return self.read(timeout)

    def rss(self) -> int:
        """Resident set size of the peer process (bytes), as psutil sees it."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        """User + system CPU time the peer process used so far."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(b'{"cmd": "quit"}\n')
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


class Pair:
    """A server process and a client process of one mode (``plain`` or ``attested``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.server = Peer(f"{mode} server", ["server", "--mode", mode])
        try:
            self.port = int(self.server.read(timeout=60)["port"])
            self.client = Peer(
                f"{mode} client", ["client", "--mode", mode, "--port", str(self.port)]
            )
            self.client.read(timeout=60)
        except BaseException:
            self.server.stop()
            raise

    def server_rss_after_gc(self) -> int:
        """The server's RSS after it ran a full garbage collection (psutil, from outside)."""
        self.server.request("rss", timeout=60)
        return self.server.rss()

    def stop(self) -> None:
        self.client.stop()
        self.server.stop()


# --- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (``fraction`` in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> Json:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p95": percentile(values, 0.95),
        "min": min(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
    }


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def echo_streams(connection: attquic.AttestedConnection) -> None:
    """The attested benchmark servers' application: echo each stream, one at a time, until the
    connection closes. attquic is imported here so the plain-QUIC modes never load it."""
    import attquic

    while True:
        try:
            stream = await connection.accept_stream()
        except attquic.ConnectionClosed:
            return
        await stream.send(await stream.receive_all())
        await stream.send_eof()
