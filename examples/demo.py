"""`make demo`: the attested echo pair on loopback, with the SIMULATED TDX.

Runs the server and the client as separate processes over real UDP: two background-check runs
(the server attests, the client verifies the quote; then mutual attestation), then two
passport runs against the verifier service started as a third process over real HTTP (the
server's quote is appraised by the service, the client checks the EAR it issued: once with the
service's key given as a file, once, mutually, with the key fetched from discovery, trust on
first use). Exits 0 only if every run attested the channel and the echo came back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attquic.tdx.simulated import SimulatedTdxHierarchy

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
MESSAGE = "hello from an attested QUIC channel"
START_TIMEOUT = 30.0


def start_server(extra: list[str]) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen(
        [PYTHON, str(HERE / "echo_server.py"), "--host", "127.0.0.1", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert server.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        print(f"[server] {line}", end="")
        if "listening on" in line:
            return server, int(line.rsplit(":", 1)[1])
    server.kill()
    raise SystemExit("the echo server did not start")


def run(title: str, server_flags: list[str], client_flags: list[str]) -> bool:
    print(f"\n=== {title} ===", flush=True)
    server, port = start_server(server_flags)
    try:
        client = subprocess.run(
            [
                PYTHON,
                str(HERE / "echo_client.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--message",
                MESSAGE,
                *client_flags,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        sys.stderr.write("".join(f"[client] {line}\n" for line in client.stderr.splitlines()))
        print("".join(f"[client] {line}\n" for line in client.stdout.splitlines()), end="")
    finally:
        server.terminate()
        try:
            out, _ = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate()
        print("".join(f"[server] {line}\n" for line in out.splitlines()), end="")
    ok = client.returncode == 0 and f"echo: {MESSAGE}" in client.stdout
    print(f"=== {title}: {'attested, echo OK' if ok else 'FAILED'} ===", flush=True)
    return ok


def _write_service_files(directory: Path) -> tuple[Path, Path, Path]:
    """Simulated collateral valid now, the simulated root, and an EAR signing key."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the simulation banner is shown by the attesters
        hierarchy = SimulatedTdxHierarchy.default()
    collateral = directory / "sim-collateral.json"
    collateral.write_text(hierarchy.collateral_json(time.time()))
    root = directory / "sim-root.pem"
    root.write_bytes(hierarchy.root_ca_pem)
    key = directory / "ear-key.pem"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return collateral, root, key


def _relay(stream: IO[str], prefix: str) -> None:
    for line in stream:
        print(f"{prefix} {line}", end="", flush=True)


@contextmanager
def verifier_service(directory: Path) -> Iterator[tuple[str, Path]]:
    """Run ``attquic verifier serve`` as its own process; yield its URL and EAR key file."""
    collateral, root, key = _write_service_files(directory)
    command = [
        PYTHON, "-m", "attquic", "verifier", "serve", "--host", "127.0.0.1", "--port", "0",
        "--policy", str(HERE / "simulated-policy.toml"), "--collateral", str(collateral),
        "--unsafe-root-ca", str(root), "--key", str(key),
    ]  # fmt: skip
    print(f"[verifier] $ attquic {' '.join(command[3:])}", flush=True)
    service = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert service.stdout is not None
    url = None
    deadline = time.monotonic() + START_TIMEOUT
    while url is None and time.monotonic() < deadline:
        line = service.stdout.readline()
        if not line:
            break
        print(f"[verifier] {line}", end="", flush=True)
        if line.startswith("attquic verifier listening on "):
            url = line.split()[-1]
    if url is None:
        service.kill()
        raise SystemExit("the verifier service did not start")
    relay = threading.Thread(target=_relay, args=(service.stdout, "[verifier]"), daemon=True)
    relay.start()
    try:
        yield url, key
    finally:
        service.terminate()
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        relay.join(timeout=5)


def run_batched() -> bool:
    """Batched evidence with the real-TDX cost model: 16 clients at once (batched_demo.py)."""
    title = "batched evidence: 16 clients at once, each quote costs 39 ms (real TDX cost)"
    print(f"\n=== {title} ===", flush=True)
    done = subprocess.run(
        [PYTHON, str(HERE / "batched_demo.py"), "--clients", "16"], timeout=120, check=False
    )
    ok = done.returncode == 0
    print(f"=== {title}: {'attested, echo OK' if ok else 'FAILED'} ===", flush=True)
    return ok


def main() -> int:
    print(
        "attquic demo: the TDX evidence is SIMULATED (test root, forged collateral).\n"
        "Everything else is real: QUIC over UDP loopback, RFC 9261 authenticators, the exporter\n"
        "binding, full DCAP verification (dcap-qvl), the appraisal policy, and in the passport\n"
        "runs the verifier service over HTTP and signed EAR attestation results.",
        flush=True,
    )
    results = [
        run("background check: server attests, client verifies the quote", [], []),
        run("background check: mutual attestation", ["--mutual"], ["--mutual"]),
    ]
    with tempfile.TemporaryDirectory(prefix="attquic-demo-") as tmp:
        print("\n=== passport model: starting the verifier service ===", flush=True)
        with verifier_service(Path(tmp)) as (url, key):
            passport = ["--model", "passport", "--verifier", url]
            results.append(
                run(
                    "passport: server presents an EAR, client trusts the verifier key file",
                    passport,
                    [*passport, "--verifier-key", str(key)],
                )
            )
            results.append(
                run(
                    "passport: mutual, verifier key from discovery (trust on first use)",
                    [*passport, "--mutual"],
                    [*passport, "--mutual"],
                )
            )
    results.append(run_batched())
    print(f"\ndemo: {sum(results)}/{len(results)} runs attested and echoed", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
