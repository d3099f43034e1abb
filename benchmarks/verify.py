"""TDX quote verifications per second: attquic's verifier against a bare dcap-qvl loop.

All three loops verify the same simulated quote against the same collateral (warm: parsed
once, before timing) and the same test root, interleaved in rounds so that machine noise
hits them alike:

* ``bare``: ``dcap_qvl.verify_with_root_ca(quote, QuoteCollateralV3, root_der, now)``;
* ``verify_quote``: attquic's synchronous path (quote parsing, trust-anchor check,
  collateral window, dcap-qvl, binding, appraisal policy);
* ``tdx_verifier``: what a connection runs, ``TdxVerifier.verify(cmw, binding, now=...)``
  (CMW unwrapping, the warm collateral source, dcap-qvl in a worker thread, and the above).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import dcap_qvl

from attquic.keyschedule import Binding
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.quote import parse_quote
from attquic.tdx.simulated import SimulatedCollateral, SimulatedTdxAttester, SimulatedTdxHierarchy
from attquic.tdx.verifier import TdxVerifier, verify_quote

Json = dict[str, Any]


async def measure(duration_s: float, rounds: int = 10) -> Json:
    hierarchy = SimulatedTdxHierarchy.default()
    attester = SimulatedTdxAttester(hierarchy)
    binding = Binding("sha384", os.urandom(48), os.urandom(48))
    cmw = await attester.attest(binding)
    quote = bytes(cmw.value)
    now = time.time()
    policy = AppraisalPolicy.from_file(
        os.path.join(os.path.dirname(__file__), "..", "examples", "simulated-policy.toml")
    )
    source = SimulatedCollateral(hierarchy)
    collateral = await source.get(parse_quote(quote), now=now)  # warms the source's cache
    bare_collateral = dcap_qvl.QuoteCollateralV3.from_json(hierarchy.collateral_json(now))
    root = hierarchy.root_ca_der
    verifier = TdxVerifier(source, policy, unsafe_root_ca_der=root)

    def bare() -> None:
        dcap_qvl.verify_with_root_ca(quote, bare_collateral, root, int(now))

    def attquic_sync() -> None:
        verify_quote(
            quote,
            collateral,
            now=now,
            policy=policy,
            expected_report_data=binding.report_data,
            unsafe_root_ca_der=root,
        )

    async def attquic_async() -> None:
        await verifier.verify(cmw, binding, now=now)

    # Calibrate a batch size so that one round of the three loops takes duration_s / rounds.
    started = time.perf_counter()
    bare()
    attquic_sync()
    await attquic_async()
    one_each = max(time.perf_counter() - started, 1e-5)
    batch = max(5, int(duration_s / rounds / one_each))

    spent = {"bare": 0.0, "verify_quote": 0.0, "tdx_verifier": 0.0}
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(batch):
            bare()
        spent["bare"] += time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(batch):
            attquic_sync()
        spent["verify_quote"] += time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(batch):
            await attquic_async()
        spent["tdx_verifier"] += time.perf_counter() - started
    count = batch * rounds
    rates = {name: count / seconds for name, seconds in spent.items()}
    return {
        "count_each": count,
        "per_second": rates,
        "us_per_verification": {name: 1e6 / rate for name, rate in rates.items()},
    }


def run(duration_s: float, rounds: int = 10) -> Json:
    return asyncio.run(measure(duration_s, rounds))
