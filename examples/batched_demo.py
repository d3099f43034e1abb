"""Batched evidence at real TDX cost: many clients at once, one quote per batch (SIMULATED TDX).

The server's simulated TDX makes each quote in 39 ms, one at a time, as a real TDX host's
quoting service does (docs/tdx.md). Sixteen clients connect at once; each verifies the server's
quote with full DCAP (dcap-qvl) and the appraisal policy, and its own inclusion proof. The
server logs every batch (``evidence.batch size=...``); at the end the batch sizes are printed.

Run by ``make demo`` (examples/demo.py) after the echo runs, or alone:
``python examples/batched_demo.py [--clients N]``. Server and clients share one process here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import warnings
from pathlib import Path

from aioquic.quic.configuration import QuicConfiguration

import attquic
from attquic import logs
from attquic.demo_ca import DemoCA
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.simulated import (
    REAL_TDX_QUOTE_LATENCY,
    SimulatedCollateral,
    SimulatedTdxAttester,
    SimulatedTdxHierarchy,
    SimulatedTdxWarning,
)
from attquic.tdx.verifier import TdxVerifier

HERE = Path(__file__).resolve().parent
ALPN = "attquic-batched-demo"


async def main_async(clients: int) -> bool:
    # the demo CA issues the TLS certificate, which is also the authenticator identity
    identity = DemoCA.default().issue(
        "attquic batched demo", ip_addresses=["127.0.0.1"], client=False
    )
    server_tls = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    server_tls.certificate, server_tls.private_key = identity.leaf, identity.private_key
    attester = SimulatedTdxAttester(quote_latency=REAL_TDX_QUOTE_LATENCY)
    hierarchy = SimulatedTdxHierarchy.default()
    verifier = TdxVerifier(
        SimulatedCollateral(hierarchy),
        AppraisalPolicy.from_file(HERE / "simulated-policy.toml"),
        unsafe_root_ca_der=hierarchy.root_ca_der,
    )

    async def echo(connection: attquic.AttestedConnection) -> None:
        while True:
            try:
                stream = await connection.accept_stream()
            except attquic.ConnectionClosed:
                return
            await stream.send(await stream.receive_all())
            await stream.send_eof()

    async def client(index: int, port: int) -> bool:
        client_tls = QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
        client_tls.cadata = DemoCA.default().certificate_pem  # TLS verifies the server
        message = f"client {index}".encode()
        async with attquic.connect(
            "127.0.0.1",
            port,
            configuration=client_tls,
            attestation=attquic.AttestationConfiguration(verifier=verifier),
        ) as connection:
            stream = await connection.open_stream()
            await stream.send(message)
            await stream.send_eof()
            return await stream.receive_all() == message

    server = await attquic.serve(
        "127.0.0.1",
        0,
        configuration=server_tls,
        attestation=attquic.AttestationConfiguration(attester=attester),
        handler=echo,
    )
    async with server:
        started = time.perf_counter()
        results = await asyncio.gather(*(client(i, server.port) for i in range(clients)))
        elapsed = time.perf_counter() - started
    assert attester.batcher is not None
    sizes = list(attester.batcher.batch_sizes)
    print(
        f"batched: {sum(results)}/{clients} clients attested and echoed in {elapsed:.2f} s; "
        f"{len(sizes)} quotes of {REAL_TDX_QUOTE_LATENCY * 1000:.0f} ms covered them (batch "
        f"sizes {sizes}); without batching: {clients} quotes, one at a time",
        flush=True,
    )
    return all(results) and sum(sizes) == clients


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    warnings.simplefilter("ignore", SimulatedTdxWarning)
    logs.configure(logging.WARNING)  # attquic's log lines on stderr: warnings, and the batches
    logging.getLogger("attquic.batching").setLevel(logging.INFO)
    return 0 if asyncio.run(main_async(args.clients)) else 1


if __name__ == "__main__":
    sys.exit(main())
