"""Abuse limits that are not wire constants: the peer's re-attestation request rate.

Each request the peer makes costs this side a quote (on real TDX about 39 ms of the host's
single quoting service), so a peer that asks again and again is a denial of service. After the
initial request, the peer's requests draw from a token bucket: :data:`DEFAULT_REATTEST_BURST`
requests at once, refilled at one token per :data:`DEFAULT_REATTEST_INTERVAL` seconds. A
request that finds the bucket empty closes the connection with REQUEST_RATE_EXCEEDED.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_REATTEST_BURST", "DEFAULT_REATTEST_INTERVAL", "TokenBucket"]

#: Re-attestation requests a peer may make back to back (after the initial one).
DEFAULT_REATTEST_BURST: Final = 4
#: Seconds per re-attestation request the peer earns back (sustained rate: 1 per 10 s).
DEFAULT_REATTEST_INTERVAL: Final = 10.0


class TokenBucket:
    """``burst`` tokens, one more every ``interval`` seconds up to ``burst``. I/O-free:
    every call takes the current time."""

    __slots__ = ("_burst", "_interval", "_last", "_tokens")

    def __init__(self, burst: int, interval: float, now: float | None = None) -> None:
        if burst < 0:
            raise ValueError("burst must not be negative")
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._burst = burst
        self._interval = interval
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> bool:
        """Spend one token; False (and nothing spent) if none is left."""
        if self._last is not None and now > self._last:
            earned = (now - self._last) / self._interval
            self._tokens = min(float(self._burst), self._tokens + earned)
        if self._last is None or now > self._last:
            self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
