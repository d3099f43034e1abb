"""TDX quote verifications per second: attquic's verifier against a bare dcap-qvl loop.

Every loop verifies the same pool of simulated quotes - one platform, a fresh REPORTDATA per
quote as every connection brings - against the same collateral (warm: parsed once, before
timing) and the same test root, interleaved in rounds so that machine noise hits them alike:

* ``bare``: ``dcap_qvl.verify_with_root_ca(quote, QuoteCollateralV3, root_der, now)``;
* ``verify_quote``: attquic's synchronous full path (quote parsing, trust-anchor check,
  collateral window, dcap-qvl, binding, appraisal policy);
* ``tdx_verifier``: what a connection runs, ``TdxVerifier.verify(cmw, binding, now=...)``
  (CMW unwrapping, the warm collateral source, and the above), COLD: built with
  ``verification_cache=False, fast_path=False``, so dcap-qvl runs for every quote;
* ``tdx_verifier_fast_path`` (the ``warm`` figures): the same with the platform fast path on
  and warmed by one verification before timing, the evidence cache off - each quote is new to
  it, so each costs the quote-signature check instead of dcap-qvl (the case of many
  connections to one server);
* ``tdx_verifier_cached``: the default ``TdxVerifier`` given the very same quote again (a
  batched quote shared by many connections): the evidence cache answers.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import dcap_qvl

from attquic.keyschedule import Binding
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.quote import parse_quote
from attquic.tdx.simulated import SimulatedCollateral, SimulatedTdxAttester, SimulatedTdxHierarchy
from attquic.tdx.verifier import TdxVerifier, verify_quote

Json = dict[str, Any]
POOL = 32
"""Distinct quotes the loops cycle through."""


async def measure(duration_s: float, rounds: int = 10) -> Json:
    hierarchy = SimulatedTdxHierarchy.default()
    attester = SimulatedTdxAttester(hierarchy)
    bindings = [Binding("sha384", os.urandom(48), os.urandom(48)) for _ in range(POOL)]
    cmws = [await attester.attest(binding) for binding in bindings]
    quotes = [bytes(cmw.value) for cmw in cmws]
    now = time.time()
    policy = AppraisalPolicy.from_file(
        os.path.join(os.path.dirname(__file__), "..", "examples", "simulated-policy.toml")
    )
    source = SimulatedCollateral(hierarchy)
    collateral = await source.get(parse_quote(quotes[0]), now=now)  # warms the source's cache
    bare_collateral = dcap_qvl.QuoteCollateralV3.from_json(hierarchy.collateral_json(now))
    root = hierarchy.root_ca_der
    cold = TdxVerifier(
        source, policy, unsafe_root_ca_der=root, verification_cache=False, fast_path=False
    )
    fast = TdxVerifier(source, policy, unsafe_root_ca_der=root, verification_cache=False)
    cached = TdxVerifier(source, policy, unsafe_root_ca_der=root)
    await fast.verify(cmws[0], bindings[0], now=now)  # warm: the platform is known
    await cached.verify(cmws[0], bindings[0], now=now)  # warm: this very quote is known
    position = [0]

    def next_index() -> int:
        position[0] = (position[0] + 1) % POOL
        return position[0]

    def bare() -> None:
        dcap_qvl.verify_with_root_ca(quotes[next_index()], bare_collateral, root, int(now))

    def attquic_sync() -> None:
        i = next_index()
        verify_quote(
            quotes[i],
            collateral,
            now=now,
            policy=policy,
            expected_report_data=bindings[i].report_data,
            unsafe_root_ca_der=root,
        )

    def through(
        verifier: TdxVerifier, *, same_quote: bool = False
    ) -> Callable[[], Awaitable[None]]:
        async def loop_body() -> None:
            i = 0 if same_quote else next_index()
            await verifier.verify(cmws[i], bindings[i], now=now)

        return loop_body

    loops: dict[str, Callable[[], Awaitable[None] | None]] = {
        "bare": bare,
        "verify_quote": attquic_sync,
        "tdx_verifier": through(cold),
        "tdx_verifier_fast_path": through(fast),
        "tdx_verifier_cached": through(cached, same_quote=True),
    }
    # Calibrate a batch size so that one round of all loops takes duration_s / rounds.
    started = time.perf_counter()
    for body in loops.values():
        await _repeat(body, 1)
    one_each = max(time.perf_counter() - started, 1e-5)
    batch = max(5, int(duration_s / rounds / one_each))

    spent = dict.fromkeys(loops, 0.0)
    for _ in range(rounds):
        for name, body in loops.items():
            started = time.perf_counter()
            await _repeat(body, batch)
            spent[name] += time.perf_counter() - started
    count = batch * rounds
    rates = {name: count / seconds for name, seconds in spent.items()}
    paths = {"fast": dict(fast.cache.hits), "cached": dict(cached.cache.hits)}
    if cold.cache.hits != {"dcap-qvl": 0, "fast-path": 0, "cache": 0} or len(cold.cache):
        raise AssertionError(f"the cold verifier used a cache: {cold.cache.hits}")
    if paths["fast"]["dcap-qvl"] != 1 or paths["cached"]["dcap-qvl"] != 1:
        raise AssertionError(f"a warm verifier ran dcap-qvl again: {paths}")
    cold_names = ("bare", "verify_quote", "tdx_verifier")
    return {
        "count_each": count,
        "quotes": POOL,
        "per_second": {name: rates[name] for name in cold_names},
        "warm_per_second": {
            "bare": rates["bare"],
            "tdx_verifier_fast_path": rates["tdx_verifier_fast_path"],
            "tdx_verifier_cached": rates["tdx_verifier_cached"],
        },
        "us_per_verification": {name: 1e6 / rate for name, rate in rates.items()},
        "paths": paths,
    }


async def _repeat(body: Callable[[], Awaitable[None] | None], times: int) -> None:
    """Call ``body`` ``times`` times (sync bodies are not wrapped in a coroutine)."""
    if asyncio.iscoroutinefunction(body):
        for _ in range(times):
            await body()
    else:
        for _ in range(times):
            body()


def run(duration_s: float, rounds: int = 10) -> Json:
    return asyncio.run(measure(duration_s, rounds))


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0), indent=1))
