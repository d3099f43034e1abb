"""The verifier service as a separate process (the CLI), over real HTTP on loopback.

The service is started with simulated TDX collateral valid now and the simulated root as its
(explicitly unsafe) trust anchor; the test plays the attester with the simulated hierarchy.
"""

from __future__ import annotations

import base64
import os
import selectors
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attquic import profile
from attquic.cmw import CMWRecord
from attquic.ear import (
    IETF_EAR_MEDIA_TYPE,
    IETF_PROFILE,
    VERAISON_EAR_MEDIA_TYPE,
    VERAISON_PROFILE,
    EarChannelVerifier,
    EarVerifier,
    Status,
    load_public_key,
)
from attquic.errors import BindingMismatch
from attquic.keyschedule import Binding
from attquic.tdx.simulated import SimulatedTdxAttester, SimulatedTdxHierarchy
from attquic.verifier_service import (
    ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE,
    NEW_SESSION_PATH,
    PROBLEM_MEDIA_TYPE,
    PassportAttester,
    VerifierClient,
    encode_attquic_evidence,
)

pytestmark = [pytest.mark.network, pytest.mark.filterwarnings("ignore::UserWarning")]

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def hierarchy() -> SimulatedTdxHierarchy:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SimulatedTdxHierarchy.default()


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    url: str
    key_pem: bytes | None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=START_TIMEOUT)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "attquic._cli.verifier", "serve", *args]


def _start(args: list[str], stderr_path: Path, key_pem: bytes | None) -> ServiceProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            _command(*args), stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT, env=env
        )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=START_TIMEOUT):
        process.kill()
        pytest.fail(f"service did not start: {stderr_path.read_text()}")
    line = process.stdout.readline().decode()
    if not line.startswith("attquic verifier listening on http://127.0.0.1:"):
        process.kill()
        pytest.fail(f"unexpected first line {line!r}: {stderr_path.read_text()}")
    return ServiceProcess(process, line.split()[-1], key_pem)


@pytest.fixture(scope="module")
def service_files(
    tmp_path_factory: pytest.TempPathFactory, hierarchy: SimulatedTdxHierarchy
) -> Path:
    directory = tmp_path_factory.mktemp("verifier")
    (directory / "collateral.json").write_text(hierarchy.collateral_json(time.time()))
    (directory / "root.pem").write_bytes(hierarchy.root_ca_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    (directory / "ear-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return directory


def _base_args(directory: Path) -> list[str]:
    return [
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--collateral",
        str(directory / "collateral.json"),
        "--unsafe-root-ca",
        str(directory / "root.pem"),
    ]


@pytest.fixture(scope="module")
def service(service_files: Path) -> Iterator[ServiceProcess]:
    args = [
        *_base_args(service_files),
        "--key",
        str(service_files / "ear-key.pem"),
        "--max-evidence-size",
        "32768",
    ]
    running = _start(
        args, service_files / "stderr.txt", (service_files / "ear-key.pem").read_bytes()
    )
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def expiring_service(service_files: Path) -> Iterator[ServiceProcess]:
    """Sessions expire as soon as they are created (--session-ttl 0): no sleeping needed."""
    args = [*_base_args(service_files), "--session-ttl", "0"]
    running = _start(args, service_files / "stderr-expiring.txt", None)
    yield running
    assert running.stop() == 0


def _binding() -> Binding:
    return Binding(hash_name="sha256", binding=os.urandom(32), aik_pub_hash=os.urandom(32))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM_MEDIA_TYPE)
    assert response.json()["status"] == status


@pytest.mark.anyio
async def test_discovery_publishes_the_configured_key(service: ServiceProcess) -> None:
    async with VerifierClient(service.url) as client:
        info = await client.discover()
    assert service.key_pem is not None
    expected = load_public_key(service.key_pem).as_dict(private=False)
    assert {k: info.ear_verification_key[k] for k in ("kty", "crv", "x", "y")} == expected
    assert info.ear_verification_key["alg"] == "ES256"
    assert ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE in info.media_types
    assert profile.TDX_QUOTE_MEDIA_TYPE in info.media_types
    assert info.state == "READY"


@pytest.mark.anyio
async def test_full_session_flow_yields_an_ear_the_relying_party_accepts(
    service: ServiceProcess, hierarchy: SimulatedTdxHierarchy
) -> None:
    assert service.key_pem is not None
    binding = _binding()
    async with VerifierClient(service.url) as client:
        cmw = await PassportAttester(SimulatedTdxAttester(hierarchy), client).attest(binding)
    verifier = EarChannelVerifier(EarVerifier([service.key_pem]))
    result = await verifier.verify(cmw, binding, now=time.time())
    assert result.status is Status.AFFIRMING
    assert result.trust_vector is not None and result.trust_vector.hardware == 2
    assert result.claims.nonce == binding.binding
    assert isinstance(cmw, CMWRecord) and cmw.type == IETF_EAR_MEDIA_TYPE
    assert result.claims.profile == IETF_PROFILE
    with pytest.raises(BindingMismatch):
        await verifier.verify(cmw, _binding(), now=time.time())


@pytest.mark.anyio
async def test_session_resource_and_delete(
    service: ServiceProcess, hierarchy: SimulatedTdxHierarchy
) -> None:
    binding = _binding()
    evidence = encode_attquic_evidence(hierarchy.quote(binding.report_data), binding.aik_pub_hash)
    async with httpx.AsyncClient() as http:
        created = await http.post(
            f"{service.url}{NEW_SESSION_PATH}", params={"nonce": _b64url(binding.binding)}
        )
        assert created.status_code == 201 and created.json()["status"] == "waiting"
        url = service.url + created.headers["Location"]
        done = await http.post(
            url, content=evidence, headers={"Content-Type": ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE}
        )
        assert done.status_code == 200 and done.json()["status"] == "complete"
        fetched = (await http.get(url)).json()
        assert fetched["result"] == done.json()["result"]
        assert (await http.delete(url)).status_code == 204
        _assert_problem(await http.get(url), 404)


@pytest.mark.anyio
async def test_malformed_nonce_is_400(service: ServiceProcess) -> None:
    async with httpx.AsyncClient() as http:
        for nonce in ("short", "!!!!!!!!!!!!", _b64url(bytes(65))):
            response = await http.post(f"{service.url}{NEW_SESSION_PATH}", params={"nonce": nonce})
            _assert_problem(response, 400)


@pytest.mark.anyio
async def test_unknown_session_is_404(service: ServiceProcess) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{service.url}/challenge-response/v1/session/nope")
    _assert_problem(response, 404)


@pytest.mark.anyio
async def test_wrong_media_type_is_415(service: ServiceProcess) -> None:
    async with httpx.AsyncClient() as http:
        created = await http.post(f"{service.url}{NEW_SESSION_PATH}")
        url = service.url + created.headers["Location"]
        response = await http.post(url, content=b"x", headers={"Content-Type": "text/plain"})
    _assert_problem(response, 415)


@pytest.mark.anyio
async def test_oversized_evidence_is_413(service: ServiceProcess) -> None:
    async with httpx.AsyncClient() as http:
        created = await http.post(f"{service.url}{NEW_SESSION_PATH}")
        url = service.url + created.headers["Location"]
        response = await http.post(
            url,
            content=bytes(32769),
            headers={"Content-Type": ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE},
        )
    _assert_problem(response, 413)


@pytest.mark.anyio
async def test_expired_session_is_404(expiring_service: ServiceProcess) -> None:
    async with httpx.AsyncClient() as http:
        created = await http.post(f"{expiring_service.url}{NEW_SESSION_PATH}")
        assert created.status_code == 201
        url = expiring_service.url + created.headers["Location"]
        _assert_problem(await http.get(url), 404)
        response = await http.post(
            url, content=b"x", headers={"Content-Type": profile.TDX_QUOTE_MEDIA_TYPE}
        )
        _assert_problem(response, 404)


@pytest.mark.anyio
async def test_ear_profile_veraison_flag(
    service_files: Path, hierarchy: SimulatedTdxHierarchy
) -> None:
    """``--ear-profile veraison``: for relying parties that only read Veraison's EARs."""
    key_file = service_files / "ear-key.pem"
    args = [*_base_args(service_files), "--key", str(key_file), "--ear-profile", "veraison"]
    running = _start(args, service_files / "stderr-veraison.txt", key_file.read_bytes())
    try:
        binding = _binding()
        async with VerifierClient(running.url) as client:
            cmw = await PassportAttester(SimulatedTdxAttester(hierarchy), client).attest(binding)
        assert isinstance(cmw, CMWRecord) and cmw.type == VERAISON_EAR_MEDIA_TYPE
        verifier = EarChannelVerifier(EarVerifier([key_file.read_bytes()]))
        result = await verifier.verify(cmw, binding, now=time.time())
        assert result.claims.profile == VERAISON_PROFILE and result.status is Status.AFFIRMING
    finally:
        assert running.stop() == 0


def test_unusable_key_exits_2_with_one_line(service_files: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        _command(*_base_args(service_files), "--key", str(service_files / "missing.pem")),
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert lines[-1].startswith("attquic verifier: ") and "missing.pem" in lines[-1]
    assert result.stdout == b""
