"""Batched evidence end to end: real QUIC over UDP loopback, many concurrent peers, each role.

The attester makes each quote in 50 ms, one at a time (the cost model of a real TDX host), so
that requests queue during a quote and form batches; every client verifies its own proof and the
shared quote with full DCAP. Attacks: batched evidence to a peer that did not accept it, a batch
answer replayed on another connection (a proof for another leaf), a tampered proof, and a quote
source that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from channel_helpers import (
    EchoApp,
    attestation,
    connect_local,
    default_attester,
    echo_once,
    rejected,
    running_server,
    simulated_verifier,
)

import attquic
from attquic import CloseCode, merkle
from attquic.batching import InclusionProof, batched_cmw, split_batched
from attquic.cmw import CMW
from attquic.keyschedule import Binding
from attquic.tdx.simulated import SimulatedTdxAttester, SimulatedTdxWarning
from attquic.tdx.verifier import TdxAttestation

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore", category=SimulatedTdxWarning),
]

LATENCY = 0.05
CLIENTS = 12


def _slow_attester(**kwargs: object) -> SimulatedTdxAttester:
    return SimulatedTdxAttester(quote_latency=LATENCY, **kwargs)  # type: ignore[arg-type]


async def _client(port: int, config: attquic.AttestationConfiguration, payload: bytes) -> object:
    async with connect_local(port, config) as connection:
        assert await echo_once(connection, payload) == payload
        return connection.peer_attestation


@pytest.mark.parametrize("role", ["server-attests", "client-attests", "mutual"])
async def test_concurrent_peers_share_quotes_in_every_role(role: str) -> None:
    server_attests = role != "client-attests"
    client_attests = role != "server-attests"
    server_attester = _slow_attester() if server_attests else None
    # the clients of one process share one attester, as the connections of one TD would
    client_attester = _slow_attester(version=5) if client_attests else None
    app = EchoApp()
    server_config = attestation(
        attester=server_attester, verifier=simulated_verifier() if client_attests else None
    )
    client_config = attestation(
        attester=client_attester, verifier=simulated_verifier() if server_attests else None
    )
    async with running_server(server_config, app) as server:
        results = await asyncio.gather(
            *(_client(server.port, client_config, b"%d" % i * 100) for i in range(CLIENTS))
        )
    for attester in (server_attester, client_attester):
        if attester is None:
            continue
        assert attester.batcher is not None
        sizes = list(attester.batcher.batch_sizes)
        assert sum(sizes) == CLIENTS  # every request answered by exactly one batch
        assert max(sizes) > 1, sizes  # and quotes were shared
        assert len(sizes) < CLIENTS
    if server_attests:
        assert all(isinstance(result, TdxAttestation) for result in results)
    if client_attests:
        assert all(isinstance(c.peer_attestation, TdxAttestation) for c in app.connections)
    assert sorted(app.received) == sorted(b"%d" % i * 100 for i in range(CLIENTS))


async def test_a_peer_that_does_not_accept_batches_gets_unbatched_evidence() -> None:
    attester = _slow_attester()
    async with running_server(attestation(attester=attester), EchoApp()) as server:
        accepting = attestation(verifier=simulated_verifier())
        refusing = attestation(verifier=simulated_verifier(), accept_batched_evidence=False)
        results = await asyncio.gather(
            *(_client(server.port, accepting if i % 2 else refusing, b"x") for i in range(8))
        )
    assert all(isinstance(result, TdxAttestation) for result in results)
    assert attester.batcher is not None
    assert sum(attester.batcher.batch_sizes) == 4  # only the accepting half went through it


async def _batch_of_two(binding: Binding) -> CMW:
    """A genuine batched answer for ``binding``: one quote over a two-leaf tree whose other leaf
    is another connection's, and ``binding``'s proof (a lone request is answered unbatched, so
    the attacks below build their batch themselves)."""
    leaves = [binding.binding, bytes(len(binding.binding))]
    root, paths = merkle.inclusion_proofs(leaves, merkle.sha512)
    evidence = await default_attester().attest(
        Binding(binding.hash_name, root, binding.aik_pub_hash)
    )
    return batched_cmw(evidence, InclusionProof(2, 0, tuple(paths[0])))


class _AlwaysBatched:
    """A misbehaving attester: batched evidence whatever the peer's SETUP said."""

    async def attest(self, binding: Binding) -> CMW:
        return await _batch_of_two(binding)


class _ReplayBatch:
    """Gives every connection the batched answer made for the first one (another leaf)."""

    def __init__(self) -> None:
        self.first: CMW | None = None

    async def attest(self, binding: Binding) -> CMW:
        return await self.attest_batched(binding)

    async def attest_batched(self, binding: Binding) -> CMW:
        if self.first is None:
            self.first = await _batch_of_two(binding)
        return self.first


class _TamperedProof:
    """Changes one thing in each batched answer's proof."""

    def __init__(self, how: str) -> None:
        self.how = how

    async def attest(self, binding: Binding) -> CMW:
        return await self.attest_batched(binding)

    async def attest_batched(self, binding: Binding) -> CMW:
        parts = split_batched(await _batch_of_two(binding))
        assert parts is not None
        evidence, proof = parts
        if self.how == "size":
            proof = replace(proof, tree_size=3, path=(*proof.path, b"\x00" * 64))
        elif self.how == "index":
            proof = replace(proof, leaf_index=1)
        else:
            proof = replace(proof, path=(b"\x00" * 64,))
        return batched_cmw(evidence, proof)


@contextlib.asynccontextmanager
async def _server(attester: object) -> AsyncIterator[tuple[int, EchoApp]]:
    app = EchoApp()
    async with running_server(attestation(attester=attester), app) as server:  # type: ignore[arg-type]
        yield server.port, app


async def _rejected(port: int, config: attquic.AttestationConfiguration) -> CloseCode:
    return CloseCode((await rejected(port, config)).code)


async def test_batched_evidence_to_a_peer_that_did_not_accept_it_is_a_binding_mismatch() -> None:
    async with _server(_AlwaysBatched()) as (port, app):
        config = attestation(verifier=simulated_verifier(), accept_batched_evidence=False)
        assert await _rejected(port, config) is CloseCode.BINDING_MISMATCH
        # the same answer is fine for a peer that accepts batches
        assert isinstance(
            await _client(port, attestation(verifier=simulated_verifier()), b"ok"),
            TdxAttestation,
        )
    assert len(app.connections) == 1


async def test_a_batch_answer_for_another_connection_is_a_binding_mismatch() -> None:
    async with _server(_ReplayBatch()) as (port, app):
        config = attestation(verifier=simulated_verifier())
        await _client(port, config, b"first")  # the genuine owner of the answer
        assert await _rejected(port, config) is CloseCode.BINDING_MISMATCH
        await asyncio.sleep(0.05)
    assert len(app.connections) == 1


@pytest.mark.parametrize("how", ["size", "index", "path"])
async def test_a_tampered_proof_is_a_binding_mismatch(how: str) -> None:
    async with _server(_TamperedProof(how)) as (port, app):
        assert await _rejected(port, attestation(verifier=simulated_verifier())) is (
            CloseCode.BINDING_MISMATCH
        )
        await asyncio.sleep(0.05)
    assert app.connections == []


class _FlakySource:
    """A quote source whose first quote fails (the host's quoting service hiccups)."""

    def __init__(self) -> None:
        self.inner = _slow_attester(batching=False)
        self.failures = 1

    async def attest(self, binding: Binding) -> CMW:
        cmw = await self.inner.attest(binding)
        if self.failures:
            self.failures -= 1
            raise OSError("quote generation service unavailable")
        return cmw


async def test_a_failed_quote_refuses_its_batch_and_the_next_batch_retries() -> None:
    from attquic.batching import BatchedAttester

    attester = BatchedAttester(_FlakySource())
    async with _server(attester) as (port, app):
        config = attestation(verifier=simulated_verifier())
        assert await _rejected(port, config) is CloseCode.REFUSED
        assert isinstance(await _client(port, config, b"again"), TdxAttestation)
    assert list(attester.batcher.batch_sizes) == [1]  # only the successful batch counts
    assert len(app.connections) == 1


def test_the_batched_demo_run_attests_every_client() -> None:
    """`make demo`'s batched run (examples/batched_demo.py), with fewer clients."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "batched_demo.py"
    done = subprocess.run(
        [sys.executable, str(script), "--clients", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "batched: 5/5 clients attested and echoed" in done.stdout
    assert "evidence.batch" in done.stdout + done.stderr  # the batch sizes are logged
