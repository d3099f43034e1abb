"""The examples fail the way a newcomer can act on: one line on stderr, a non-zero exit.

Real processes over real loopback sockets: a client with nothing to talk to, a server on a
port in use, a passport-model server whose verifier service is unreachable; and the logging
flags (JSON log lines on stderr, stdout left to the results). A server whose attester fails
tells the client so in words, not as a request context in hex.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from channel_helpers import attestation, client_tls, running_server, simulated_verifier

import attquic
from attquic.cmw import CMW
from attquic.errors import AttesterUnavailable
from attquic.keyschedule import Binding

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.network


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _example(name: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def test_client_with_nothing_listening_exits_1_with_one_line_and_json_logs() -> None:
    port = _free_port(socket.SOCK_DGRAM)
    result = _example(
        "echo_client.py", "--port", str(port), "--handshake-timeout", "0.5",
        "--log-format", "json",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    assert _last_line(result.stderr) == (
        f"echo client: no answer from 127.0.0.1:{port} within 0.5 s "
        "(is an attquic server listening there, on UDP?)"
    )
    log_lines = result.stderr.rstrip("\n").splitlines()[:-1]
    assert log_lines, "the simulated-TDX warning and the unsafe-root warning are logged"
    records = [json.loads(line) for line in log_lines]  # every log line is one JSON object
    assert sum("SimulatedTdxWarning" in r.get("event", "") for r in records) == 1
    assert any(r.get("event") == "tdx.unsafe_root_ca" for r in records)
    assert "Traceback" not in result.stderr


def test_quiet_client_prints_only_the_error_line() -> None:
    port = _free_port(socket.SOCK_DGRAM)
    result = _example("echo_client.py", "--port", str(port), "--handshake-timeout", "0.5", "-q")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"echo client: no answer from 127.0.0.1:{port} within 0.5 s "
        "(is an attquic server listening there, on UDP?)"
    ]


def test_server_on_a_port_in_use_exits_2_naming_the_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        result = _example("echo_server.py", "--port", str(port), "-q")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"echo server: cannot start: cannot listen on 127.0.0.1:{port} (UDP): "
        "address already in use"
    ]


def test_passport_server_with_an_unreachable_verifier_does_not_start() -> None:
    url = f"http://127.0.0.1:{_free_port(socket.SOCK_STREAM)}"
    result = _example("echo_server.py", "--port", "0", "--model", "passport", "--verifier", url)
    assert result.returncode == 2
    line = _last_line(result.stderr)
    assert line.startswith(
        f"echo server: cannot start: the verifier service at {url} is unreachable: "
    )
    assert "listening" not in result.stdout
    assert "Traceback" not in result.stderr


class _FailingAttester:
    """An attester whose evidence source is gone (e.g. the verifier service went down)."""

    async def attest(self, binding: Binding) -> CMW:
        raise AttesterUnavailable("no attestation result from the verifier: connection refused")


@pytest.mark.anyio
async def test_a_server_that_cannot_obtain_evidence_is_reported_in_words() -> None:
    async with running_server(attestation(attester=_FailingAttester()), _no_handler) as server:
        with pytest.raises(attquic.ConnectionClosed) as caught:
            async with attquic.connect(
                "127.0.0.1",
                server.port,
                configuration=client_tls(),
                attestation=attestation(verifier=simulated_verifier()),
            ):
                pytest.fail("an unattested server reached the application")
    message = str(caught.value)
    assert caught.value.code == attquic.CloseCode.REFUSED
    assert "could not obtain evidence or an attestation result" in message
    assert "context" not in message and "\n" not in message


async def _no_handler(connection: attquic.AttestedConnection) -> None:
    raise AssertionError("the handler ran for an unattested connection")
