"""The passport model end to end: real QUIC over UDP and real HTTP on loopback.

The verifier service runs as a separate process (``python -m attquic verifier serve``) with the
simulated TDX root, collateral valid now, a policy naming the simulated measurements and an EAR
signing key written by the test. The attesting server has the service appraise its simulated
quote and presents the EAR; the client trusts the service's key and checks the EAR.

Bad EARs (forged, expired, for another nonce, from an untrusted key, non-affirming) come from
:class:`LocalEarAttester`, which issues the passport CMW itself with :func:`issue_ear`, so that
each one differs from a genuine token in exactly one respect; a control case shows that the same
attester with nothing wrong is accepted. Each rejection must carry the close code of
docs/protocol.md and docs/passport.md, and the server's application must never run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from channel_helpers import (
    SIMULATED_POLICY,
    EchoApp,
    RecordingAttester,
    attestation,
    connect_local,
    default_attester,
    echo_once,
    rejected,
    running_server,
    simulated_verifier,
)
from joserfc.jwk import ECKey

import attquic
from attquic import CloseCode, profile
from attquic.attestation import HardwareAttestation, IssuerAssertion
from attquic.cmw import CMW, CMWRecord
from attquic.ear import (
    IETF_PROFILE,
    VERAISON_EAR_MEDIA_TYPE,
    VERAISON_PROFILE,
    Appraisal,
    EarAttestation,
    EarChannelVerifier,
    EarClaims,
    EarVerifier,
    Status,
    TrustVector,
    VerifierId,
    generate_signing_key,
    issue_ear,
    load_private_key,
)
from attquic.keyschedule import Binding
from attquic.tdx.simulated import OTHER_MRTD, SimulatedTdxHierarchy
from attquic.verifier_service import PassportAttester, VerifierClient

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.network,
    pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning"),
]

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
LISTENING = "attquic verifier listening on "


# --- the verifier service process ----------------------------------------------------------


@dataclass
class VerifierProcess:
    process: subprocess.Popen[str]
    url: str
    signing_key: ECKey
    """The service's EAR signing key (the test wrote it, so it can also sign as the service)."""
    key_file: Path


def _write_service_files(directory: Path) -> dict[str, Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hierarchy = SimulatedTdxHierarchy.default()
    files = {
        "collateral": directory / "collateral.json",
        "root": directory / "root.pem",
        "policy": directory / "policy.json",
        "key": directory / "ear-key.json",
    }
    files["collateral"].write_text(hierarchy.collateral_json(time.time()))
    files["root"].write_bytes(hierarchy.root_ca_pem)
    files["policy"].write_text(json.dumps(SIMULATED_POLICY.to_dict()))
    files["key"].write_text(json.dumps(generate_signing_key().as_dict(private=True)))
    return files


def _drain(stream: IO[str]) -> None:
    """Keep reading the service's stdout (its log lines) so the pipe never fills."""
    for _ in stream:
        pass


@pytest.fixture(scope="module")
def verifier_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VerifierProcess]:
    directory = tmp_path_factory.mktemp("passport-verifier")
    files = _write_service_files(directory)
    command = [
        sys.executable, "-m", "attquic", "verifier", "serve", "--host", "127.0.0.1",
        "--port", "0", "--policy", str(files["policy"]), "--collateral",
        str(files["collateral"]), "--unsafe-root-ca", str(files["root"]),
        "--key", str(files["key"]),
    ]  # fmt: skip
    stderr_path = directory / "stderr.txt"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT, env=env, text=True
        )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    ready = selector.select(timeout=START_TIMEOUT)
    selector.close()
    line = process.stdout.readline() if ready else ""
    if not line.startswith(LISTENING + "http://127.0.0.1:"):
        process.kill()
        process.wait()
        pytest.fail(f"verifier service did not start ({line!r}): {stderr_path.read_text()}")
    drain = threading.Thread(target=_drain, args=(process.stdout,), daemon=True)
    drain.start()
    yield VerifierProcess(process, line.split()[-1], load_private_key(files["key"]), files["key"])
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=START_TIMEOUT) == 0, stderr_path.read_text()
    drain.join(timeout=5)


def ear_verifier(service: VerifierProcess) -> EarChannelVerifier:
    """The relying party: trusts exactly the service's key, read from its key file."""
    return EarChannelVerifier(EarVerifier([service.key_file]))


@contextlib.asynccontextmanager
async def passport_attester(
    service: VerifierProcess, **simulated: object
) -> AsyncIterator[PassportAttester]:
    async with VerifierClient(service.url) as client:
        yield PassportAttester(default_attester(**simulated), client)


# --- locally issued EARs -------------------------------------------------------------------


def good_claims(binding: Binding, now: float) -> EarClaims:
    """The claims the service would issue for an accepted quote, bound to ``binding``
    (draft-ietf-rats-ear-03, as the service issues them by default)."""
    vector = TrustVector(instance_identity=2, configuration=2, executables=2, hardware=2)
    return EarClaims(
        profile=IETF_PROFILE,
        iat=int(now),
        exp=int(now) + 300,
        verifier_id=VerifierId("attquic-test", "local issuer"),
        submods={
            "tdx": Appraisal(Status.AFFIRMING, vector, ("policy:test",), nonce=binding.binding)
        },
        status=Status.AFFIRMING,
        nonce=binding.binding,
    )


def veraison_claims(binding: Binding, now: float) -> EarClaims:
    """The same EAR in Veraison's profile (what attquic/1's service issued)."""
    claims = good_claims(binding, now)
    tdx = dataclasses.replace(claims.submods["tdx"], nonce=None)
    return dataclasses.replace(claims, profile=VERAISON_PROFILE, submods={"tdx": tdx})


ClaimsFor = Callable[[Binding, float], EarClaims]
TokenEdit = Callable[[str], str]


def _flip_signature_bit(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return f"{header}.{payload}.{flipped}"


def _swap_in_other_nonce(token: str) -> str:
    """Keep the header and signature, replace the payload by one with another eat_nonce."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["eat_nonce"] = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


def _hs256_header(token: str) -> str:
    """The same payload and signature under a header naming HMAC (an alg-confusion attempt)."""
    _, payload, signature = token.split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def _truncated(token: str) -> str:
    return token.rsplit(".", 1)[0]


class LocalEarAttester:
    """Issues the passport CMW without the service: ``claims_for(binding, now)`` signed with
    ``key``, optionally edited after signing, as CMW record [media_type, JWT, ind 8]."""

    def __init__(
        self,
        key: ECKey,
        claims_for: ClaimsFor = good_claims,
        edit: TokenEdit | None = None,
        media_type: str = profile.EAR_JWT_MEDIA_TYPE,
    ) -> None:
        self.key = key
        self.claims_for = claims_for
        self.edit = edit
        self.media_type = media_type

    async def attest(self, binding: Binding) -> CMW:
        token = issue_ear(self.claims_for(binding, time.time()), self.key)
        if self.edit is not None:
            token = self.edit(token)
        return CMWRecord(self.media_type, token.encode("ascii"), profile.IND_ATTESTATION_RESULTS)


def _with(**changes: object) -> ClaimsFor:
    def claims_for(binding: Binding, now: float) -> EarClaims:
        return dataclasses.replace(good_claims(binding, now), **changes)  # type: ignore[arg-type]

    return claims_for


def _expired(binding: Binding, now: float) -> EarClaims:
    # exp ten minutes ago: well past the verifier's 60 s clock-skew allowance
    return dataclasses.replace(good_claims(binding, now), iat=int(now) - 3600, exp=int(now) - 600)


def _other_nonce(binding: Binding, now: float) -> EarClaims:
    return dataclasses.replace(good_claims(binding, now), nonce=os.urandom(len(binding.binding)))


def _submodule_nonce(binding: Binding, now: float) -> EarClaims:
    """-03: the top-level eat_nonce is right, the appraisal's evidence nonce is another's."""
    claims = good_claims(binding, now)
    tdx = dataclasses.replace(claims.submods["tdx"], nonce=os.urandom(len(binding.binding)))
    return dataclasses.replace(claims, submods={"tdx": tdx})


def _status_above_vector(binding: Binding, now: float) -> EarClaims:
    """-03: "affirming" over a vector that says the executables are contraindicated."""
    claims = good_claims(binding, now)
    vector = TrustVector(instance_identity=2, executables=96, hardware=2)
    tdx = dataclasses.replace(claims.submods["tdx"], trust_vector=vector)
    return dataclasses.replace(claims, submods={"tdx": tdx})


def _submodule_status(status: Status) -> ClaimsFor:
    def claims_for(binding: Binding, now: float) -> EarClaims:
        claims = good_claims(binding, now)
        tdx = dataclasses.replace(claims.submods["tdx"], status=status)
        return dataclasses.replace(claims, submods={"tdx": tdx}, status=status)

    return claims_for


# --- helpers -------------------------------------------------------------------------------


async def _expect_rejection(
    server_attester: object, client_verifier: object, code: CloseCode
) -> attquic.ConnectionClosed:
    """The client must refuse the server's attestation with ``code``; no app ever runs."""
    app = EchoApp()
    server_config = attestation(attester=server_attester)  # type: ignore[arg-type]
    client_config = attestation(verifier=client_verifier)  # type: ignore[arg-type]
    async with running_server(server_config, app) as server:
        closed = await rejected(server.port, client_config)
        await asyncio.sleep(0.05)
    assert closed.code == code, closed
    assert app.connections == [] and app.received == [], "the server application ran"
    return closed


def _assert_issuer_assertion(result: object, service_issued: bool) -> EarAttestation:
    assert isinstance(result, EarAttestation)
    assert isinstance(result, IssuerAssertion) and not isinstance(result, HardwareAttestation)
    assert result.media_type == profile.EAR_JWT_MEDIA_TYPE
    assert result.status is Status.AFFIRMING and result.submodule == "tdx"
    if service_issued:
        assert result.claims.profile == IETF_PROFILE
        assert result.claims.submods["tdx"].nonce == result.claims.nonce
        assert result.issuer.startswith("attquic attquic-verifier")
        assert result.trust_vector is not None and result.trust_vector.hardware == 2
    return result


# --- the channel opens ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suite", "mutual"), [("sha256", False), ("sha384", False), ("sha256", True)]
)
async def test_passport_channel_opens_and_data_flows(
    verifier_service: VerifierProcess, suite: str, mutual: bool
) -> None:
    app = EchoApp()
    async with (
        passport_attester(verifier_service) as server_attester,
        passport_attester(verifier_service, version=5) as client_attester,
    ):
        server_config = attestation(
            attester=server_attester, verifier=ear_verifier(verifier_service) if mutual else None
        )
        client_config = attestation(
            verifier=ear_verifier(verifier_service), attester=client_attester if mutual else None
        )
        async with (
            running_server(server_config, app, suite) as server,
            connect_local(server.port, client_config, suite) as connection,
        ):
            assert connection.tls_hash_name == suite
            result = _assert_issuer_assertion(connection.peer_attestation, service_issued=True)
            assert result.claims.nonce is not None
            # the passport attester batches by default, but a lone request is a batch of one,
            # answered unbatched: eat_nonce is this connection's own binding
            assert len(result.claims.nonce) == {"sha256": 32, "sha384": 48}[suite]
            assert await echo_once(connection, b"passport" * 500) == b"passport" * 500
    assert app.received == [b"passport" * 500]
    server_view = app.connections[0].peer_attestation
    if mutual:
        _assert_issuer_assertion(server_view, service_issued=True)
    else:
        assert server_view is None


async def test_reattestation_fetches_a_fresh_ear(verifier_service: VerifierProcess) -> None:
    async with (
        passport_attester(verifier_service) as attester,
        running_server(attestation(attester=attester), EchoApp()) as server,
        connect_local(
            server.port, attestation(verifier=ear_verifier(verifier_service))
        ) as connection,
    ):
        first = _assert_issuer_assertion(connection.peer_attestation, service_issued=True)
        second = _assert_issuer_assertion(await connection.reattest(), service_issued=True)
        assert second.claims.nonce != first.claims.nonce  # a new context, a new binding
        assert second.token != first.token
        assert await echo_once(connection, b"still attested") == b"still attested"


async def test_locally_issued_ear_under_the_trusted_key_is_accepted(
    verifier_service: VerifierProcess,
) -> None:
    """Control for the rejection cases below: the local issuer, with nothing wrong, passes."""
    app = EchoApp()
    async with (
        running_server(
            attestation(attester=LocalEarAttester(verifier_service.signing_key)), app
        ) as server,
        connect_local(
            server.port, attestation(verifier=ear_verifier(verifier_service))
        ) as connection,
    ):
        result = _assert_issuer_assertion(connection.peer_attestation, service_issued=False)
        assert result.issuer == "attquic-test local issuer"
        assert await echo_once(connection, b"ok") == b"ok"
    assert app.received == [b"ok"]


async def test_veraison_profile_ear_is_still_accepted(verifier_service: VerifierProcess) -> None:
    """An attester whose verifier issues Veraison-profile EARs (attquic/1's service, a Veraison
    deployment) presents them under the Veraison media type: still accepted."""
    app = EchoApp()
    attester = LocalEarAttester(
        verifier_service.signing_key, veraison_claims, media_type=VERAISON_EAR_MEDIA_TYPE
    )
    async with (
        running_server(attestation(attester=attester), app) as server,
        connect_local(
            server.port, attestation(verifier=ear_verifier(verifier_service))
        ) as connection,
    ):
        result = connection.peer_attestation
        assert isinstance(result, EarAttestation) and result.status is Status.AFFIRMING
        assert result.claims.profile == VERAISON_PROFILE
        assert result.media_type == VERAISON_EAR_MEDIA_TYPE
        assert await echo_once(connection, b"veraison") == b"veraison"
    assert app.received == [b"veraison"]


# --- bad EARs are rejected with the documented close code ----------------------------------

ROGUE_KEY = generate_signing_key()


@dataclass(frozen=True)
class BadEar:
    claims_for: ClaimsFor
    code: CloseCode
    reason: str
    """What the relying party's close reason must say (it failed for the intended reason)."""
    edit: TokenEdit | None = None
    key: ECKey | None = None
    """The signing key; None: the service's own, trusted key."""
    media_type: str = profile.EAR_JWT_MEDIA_TYPE


NOW = int(time.time())
BAD_EARS: dict[str, BadEar] = {
    "forged-signature": BadEar(
        good_claims, CloseCode.EVIDENCE_INVALID, "signature", edit=_flip_signature_bit
    ),
    "forged-claims": BadEar(
        good_claims, CloseCode.EVIDENCE_INVALID, "signature", edit=_swap_in_other_nonce
    ),
    "not-a-jws": BadEar(good_claims, CloseCode.EVIDENCE_INVALID, "compact JWS", edit=_truncated),
    "hs256-alg": BadEar(good_claims, CloseCode.EVIDENCE_INVALID, "not allowed", edit=_hs256_header),
    "expired": BadEar(_expired, CloseCode.EVIDENCE_INVALID, "expired"),
    "issued-in-the-future": BadEar(
        _with(iat=NOW + 3600, exp=NOW + 7200), CloseCode.EVIDENCE_INVALID, "future"
    ),
    "untrusted-key": BadEar(
        good_claims, CloseCode.EVIDENCE_INVALID, "trusted verifier key", key=ROGUE_KEY
    ),
    "other-nonce": BadEar(_other_nonce, CloseCode.BINDING_MISMATCH, "eat_nonce"),
    "no-nonce": BadEar(_with(nonce=None), CloseCode.BINDING_MISMATCH, "eat_nonce"),
    "contraindicated": BadEar(
        _submodule_status(Status.CONTRAINDICATED), CloseCode.POLICY_REJECTED, "contraindicated"
    ),
    "warning": BadEar(_submodule_status(Status.WARNING), CloseCode.POLICY_REJECTED, "warning"),
    # draft-ietf-rats-ear-03 specifics
    "veraison-token-labelled-03": BadEar(
        veraison_claims, CloseCode.EVIDENCE_INVALID, "media type names profile"
    ),
    "03-token-labelled-veraison": BadEar(
        good_claims,
        CloseCode.EVIDENCE_INVALID,
        "media type names profile",
        media_type=VERAISON_EAR_MEDIA_TYPE,
    ),
    "03-submod-nonce-of-another": BadEar(
        _submodule_nonce, CloseCode.BINDING_MISMATCH, "submod 'tdx' eat_nonce"
    ),
    "03-status-above-its-vector": BadEar(
        _status_above_vector, CloseCode.EVIDENCE_INVALID, "claims more trust"
    ),
}


@pytest.mark.parametrize("case", list(BAD_EARS))
async def test_bad_ear_is_rejected(verifier_service: VerifierProcess, case: str) -> None:
    bad = BAD_EARS[case]
    attester = LocalEarAttester(
        bad.key or verifier_service.signing_key, bad.claims_for, bad.edit, bad.media_type
    )
    closed = await _expect_rejection(attester, ear_verifier(verifier_service), bad.code)
    assert bad.reason in str(closed)


async def test_service_contraindicates_a_td_outside_its_policy(
    verifier_service: VerifierProcess,
) -> None:
    """The real service path: a genuine EAR whose status is contraindicated (MRTD not in the
    service's policy) is refused by the relying party's status requirement."""
    async with passport_attester(verifier_service, mrtd=OTHER_MRTD) as attester:
        closed = await _expect_rejection(
            attester, ear_verifier(verifier_service), CloseCode.POLICY_REJECTED
        )
    assert "contraindicated" in str(closed)


async def test_ear_replayed_on_another_connection_is_a_binding_mismatch(
    verifier_service: VerifierProcess,
) -> None:
    """A genuine EAR captured on connection A and presented on connection B."""
    app = EchoApp()
    async with passport_attester(verifier_service) as inner:
        replayer = RecordingAttester(inner, replay_first=True)
        client_config = attestation(verifier=ear_verifier(verifier_service))
        async with running_server(attestation(attester=replayer), app) as server:
            async with connect_local(server.port, client_config):
                pass  # connection A: genuine
            closed = await rejected(server.port, client_config)
            await asyncio.sleep(0.05)
    assert closed.code == CloseCode.BINDING_MISMATCH
    assert len(app.connections) == 1  # only connection A reached the application


async def test_unreachable_verifier_service_makes_the_attester_refuse(
    verifier_service: VerifierProcess,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with VerifierClient(f"http://127.0.0.1:{closed_port}", timeout=5) as client:
        attester = PassportAttester(default_attester(), client)
        await _expect_rejection(attester, ear_verifier(verifier_service), CloseCode.REFUSED)


async def test_silent_verifier_service_times_the_attester_out(
    verifier_service: VerifierProcess,
) -> None:
    """The service accepts the TCP connection and never answers: the relying party's
    attestation deadline closes the connection (the attester is still waiting for its EAR)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with VerifierClient(url, timeout=3) as client:
            attester = PassportAttester(default_attester(), client)
            app = EchoApp()
            client_config = attestation(
                verifier=ear_verifier(verifier_service), attestation_timeout=0.5
            )
            async with running_server(attestation(attester=attester), app) as server:
                closed = await rejected(server.port, client_config)
    assert closed.code == CloseCode.TIMEOUT
    assert app.connections == []


# --- the models are not interchangeable ----------------------------------------------------


async def test_quote_sent_to_a_passport_relying_party_is_rejected(
    verifier_service: VerifierProcess,
) -> None:
    closed = await _expect_rejection(
        default_attester(), ear_verifier(verifier_service), CloseCode.EVIDENCE_INVALID
    )
    assert "not an EAR" in str(closed)


async def test_ear_sent_to_a_background_check_relying_party_is_rejected(
    verifier_service: VerifierProcess,
) -> None:
    async with passport_attester(verifier_service) as attester:
        closed = await _expect_rejection(attester, simulated_verifier(), CloseCode.EVIDENCE_INVALID)
    assert "TDX quote" in str(closed)


# --- the legacy wire profile ---------------------------------------------------------------


async def test_legacy_profile_passport_channel(verifier_service: VerifierProcess) -> None:
    """Both ends on the expat -03 binder: the service is profile-agnostic (it is given the
    binding as the nonce), so the passport model works the same as with attquic/2."""
    legacy = profile.ATTQUIC_2_LEGACY_EXPAT_03
    app = EchoApp()
    async with (
        passport_attester(verifier_service) as attester,
        running_server(attestation(attester=attester, profile=legacy), app) as server,
        connect_local(
            server.port, attestation(verifier=ear_verifier(verifier_service), profile=legacy)
        ) as connection,
    ):
        _assert_issuer_assertion(connection.peer_attestation, service_issued=True)
        assert await echo_once(connection, b"legacy passport") == b"legacy passport"
    assert app.received == [b"legacy passport"]


# --- batched evidence ------------------------------------------------------------------------


@pytest.mark.parametrize("mutual", [False, True])
async def test_concurrent_peers_share_one_ear_per_batch(
    verifier_service: VerifierProcess, mutual: bool
) -> None:
    """Quotes cost 50 ms, one at a time: concurrent requests queue and share one quote, one
    verifier-service session and one EAR (eat_nonce = the batch root); each connection checks
    its own inclusion proof and the EAR. A client that does not accept batches gets its own."""
    clients = 10
    app = EchoApp()
    async with (
        passport_attester(verifier_service, quote_latency=0.05) as server_attester,
        passport_attester(verifier_service, version=5, quote_latency=0.05) as client_attester,
    ):
        server_config = attestation(
            attester=server_attester, verifier=ear_verifier(verifier_service) if mutual else None
        )

        async def client(accept: bool) -> bytes:
            config = attestation(
                verifier=ear_verifier(verifier_service),
                attester=client_attester if mutual else None,
                accept_batched_evidence=accept,
            )
            async with connect_local(server.port, config) as connection:
                result = _assert_issuer_assertion(connection.peer_attestation, True)
                assert await echo_once(connection, b"batched") == b"batched"
                assert result.claims.nonce is not None
                return result.claims.nonce

        async with running_server(server_config, app) as server:
            nonces = await asyncio.gather(*(client(i > 0) for i in range(clients)))
    assert len(nonces[0]) in (32, 48)  # the non-accepting client: eat_nonce is its binding
    assert server_attester.batcher is not None
    sizes = list(server_attester.batcher.batch_sizes)
    assert sum(sizes) == clients - 1 and max(sizes) > 1, sizes
    # a batch of one is answered unbatched (eat_nonce = the binding), larger ones with the root
    roots = [nonce for nonce in nonces[1:] if len(nonce) == 64]
    assert len(roots) == sum(size for size in sizes if size > 1)
    assert len(set(roots)) == sum(1 for size in sizes if size > 1)  # one EAR's root per batch
    if mutual:
        assert client_attester.batcher is not None
        assert sum(client_attester.batcher.batch_sizes) == clients
        for connection in app.connections:
            _assert_issuer_assertion(connection.peer_attestation, True)
