"""Building blocks for the end-to-end channel tests: real QUIC over UDP loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.tls import CipherSuite

import attquic
from attquic.api import AttestedConnection, AttestedServer
from attquic.attestation import Attester, Verifier
from attquic.cmw import CMW
from attquic.demo_ca import DemoCA
from attquic.keyschedule import Binding
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.simulated import (
    DEFAULT_MEASUREMENTS,
    SimulatedCollateral,
    SimulatedTdxAttester,
    SimulatedTdxHierarchy,
    SimulationKnobs,
)
from attquic.tdx.verifier import TdxVerifier

ALPN = "attquic-test"
#: The CA of the test run (a fresh key per process): it issues the server's TLS certificate,
#: which the server also uses as its authenticator identity (expat -04 §3.3 identity (a)), and
#: the client's certificate, its authenticator identity in mutual tests (identity (b)).
TEST_CA = DemoCA.generate("attquic test CA")
TLS_IDENTITY = TEST_CA.issue(
    "attquic test server", dns_names=["localhost"], ip_addresses=["127.0.0.1"], client=False
)
CLIENT_IDENTITY = TEST_CA.issue("attquic test client", server=False)

SUITES = {
    "sha256": CipherSuite.AES_128_GCM_SHA256,
    "sha384": CipherSuite.AES_256_GCM_SHA384,
}

NO_KNOBS = SimulationKnobs()
SIMULATED_POLICY = AppraisalPolicy(
    accepted_mrtd=(DEFAULT_MEASUREMENTS.mrtd,),
    accepted_rtmr0=(DEFAULT_MEASUREMENTS.rtmrs[0],),
    accepted_rtmr3=(DEFAULT_MEASUREMENTS.rtmrs[3],),
)


def server_tls(suite: str | None = None) -> QuicConfiguration:
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    config.certificate = TLS_IDENTITY.leaf
    config.private_key = TLS_IDENTITY.private_key  # type: ignore[assignment]
    if suite is not None:
        config.cipher_suites = [SUITES[suite]]
    return config


def client_tls(suite: str | None = None) -> QuicConfiguration:
    """A client that verifies the server's TLS certificate against the test CA; it holds a
    certificate of its own (aioquic servers never ask for it), its default authenticator
    identity when it attests."""
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
    config.cadata = TEST_CA.certificate_pem
    config.certificate = CLIENT_IDENTITY.leaf
    config.private_key = CLIENT_IDENTITY.private_key  # type: ignore[assignment]
    if suite is not None:
        config.cipher_suites = [SUITES[suite]]
    return config


def simulated_verifier(
    knobs: SimulationKnobs = NO_KNOBS, policy: AppraisalPolicy = SIMULATED_POLICY
) -> TdxVerifier:
    hierarchy = SimulatedTdxHierarchy.default()
    return TdxVerifier(
        SimulatedCollateral(hierarchy, knobs=knobs),
        policy,
        unsafe_root_ca_der=hierarchy.root_ca_der,
    )


def attestation(
    *,
    attester: Attester | None = None,
    verifier: Verifier | None = None,
    **kwargs: Any,
) -> attquic.AttestationConfiguration:
    """A configuration; a verifying side trusts the test CA for authenticator certificates."""
    if verifier is not None:
        kwargs.setdefault("trust_store", TEST_CA.trust_store)
    return attquic.AttestationConfiguration(attester=attester, verifier=verifier, **kwargs)


@dataclass
class EchoApp:
    """A server application that records what reached it and echoes every stream."""

    connections: list[AttestedConnection] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)

    async def __call__(self, connection: AttestedConnection) -> None:
        self.connections.append(connection)
        while True:
            try:
                stream = await connection.accept_stream()
            except attquic.ConnectionClosed:
                return
            data = await stream.receive_all()
            self.received.append(data)
            await stream.send(data)
            await stream.send_eof()


@contextlib.asynccontextmanager
async def running_server(
    server_attestation: attquic.AttestationConfiguration,
    handler: Callable[[AttestedConnection], Awaitable[None]],
    suite: str | None = None,
) -> AsyncIterator[AttestedServer]:
    server = await attquic.serve(
        "127.0.0.1",
        0,
        configuration=server_tls(suite),
        attestation=server_attestation,
        handler=handler,
    )
    async with server:
        yield server


async def echo_once(connection: AttestedConnection, payload: bytes) -> bytes:
    stream = await connection.open_stream()
    await stream.send(payload)
    await stream.send_eof()
    return await stream.receive_all()


class RecordingAttester:
    """Wraps an attester; can replay the first CMW it produced (a replay attacker)."""

    def __init__(self, inner: Attester, *, replay_first: bool = False) -> None:
        self.inner = inner
        self.replay_first = replay_first
        self.produced: list[CMW] = []

    async def attest(self, binding: Binding) -> CMW:
        if self.replay_first and self.produced:
            return self.produced[0]
        cmw = await self.inner.attest(binding)
        self.produced.append(cmw)
        return cmw


class StallingAttester:
    """Never answers: the peer must time out."""

    async def attest(self, binding: Binding) -> CMW:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def default_attester(**kwargs: Any) -> SimulatedTdxAttester:
    return SimulatedTdxAttester(**kwargs)


def connect_local(
    port: int, config: attquic.AttestationConfiguration, suite: str | None = None, **kwargs: Any
) -> contextlib.AbstractAsyncContextManager[AttestedConnection]:
    """A client of the test CA (TLS ``suite`` if given) to a server on 127.0.0.1:``port``;
    ``kwargs`` go to attquic.connect (handshake_timeout, ...)."""
    return attquic.connect(
        "127.0.0.1", port, configuration=client_tls(suite), attestation=config, **kwargs
    )


def connect_verifying(
    server: AttestedServer, **kwargs: Any
) -> contextlib.AbstractAsyncContextManager[AttestedConnection]:
    """A client that verifies the server with the simulated-TDX DCAP verifier; ``kwargs`` go
    to its AttestationConfiguration."""
    return connect_local(server.port, attestation(verifier=simulated_verifier(), **kwargs))


async def rejected(
    port: int, config: attquic.AttestationConfiguration, suite: str | None = None
) -> attquic.ConnectionClosed:
    """Connect with ``config``: the connection must close before connect() returns, so the
    client application never gets it. Returns the close."""
    with pytest.raises(attquic.ConnectionClosed) as info:
        async with connect_local(port, config, suite):
            raise AssertionError("connect() must not return for a rejected peer")
    return info.value
