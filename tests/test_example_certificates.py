"""The example pair as separate processes over UDP: the demo CA on its own, or real certificates.

The server and the client are started exactly as the README shows, each finding the demo CA
without any flag; with ``--cert/--key/--ca`` they use certificates the user brings; a client
trusting another CA refuses the server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from attquic.demo_ca import DemoCA

pytestmark = [pytest.mark.network]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@contextmanager
def echo_server(*flags: str) -> Iterator[int]:
    command = [sys.executable, str(EXAMPLES / "echo_server.py"), "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    assert server.stdout is not None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            if "listening on" in line:
                yield int(line.rsplit(":", 1)[1])
                return
        pytest.fail("the echo server did not start")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def echo_client(port: int, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(EXAMPLES / "echo_client.py"), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--message", "certificates", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=ENV)


def write_pki(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 under it, as PEM files."""
    ca = DemoCA.generate(f"{name} CA")
    server = ca.issue(f"{name} server", ip_addresses=["127.0.0.1"], client=False)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(server.leaf.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        server.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca_file = directory / f"{name}-ca.pem"
    ca_file.write_bytes(ca.certificate_pem)
    return cert, key, ca_file


def test_example_pair_finds_the_demo_ca_on_its_own() -> None:
    with echo_server() as port:
        client = echo_client(port)
    assert client.returncode == 0, client.stderr
    assert "echo: certificates" in client.stdout
    assert "DEMO CA" in client.stderr


def test_example_pair_with_real_certificates(tmp_path: Path) -> None:
    cert, key, ca = write_pki(tmp_path, "real")
    _, _, other_ca = write_pki(tmp_path, "other")
    with echo_server("--cert", str(cert), "--key", str(key)) as port:
        good = echo_client(port, "--ca", str(ca))
        wrong = echo_client(port, "--ca", str(other_ca))
        demo = echo_client(port)  # trusts only the demo CA
    assert good.returncode == 0, good.stderr
    assert "echo: certificates" in good.stdout
    for refused in (wrong, demo):
        assert refused.returncode != 0
        assert "echo:" not in refused.stdout
