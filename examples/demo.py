"""`make demo`: the attested echo pair on loopback, with the SIMULATED TDX.

Runs the server and the client as separate processes over real UDP, first with the server
attesting (the default), then with mutual attestation. Exits 0 only if every run attested the
channel and the echo came back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
MESSAGE = "hello from an attested QUIC channel"


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


def main() -> int:
    print(
        "attquic demo: the server's TDX evidence is SIMULATED (test root, forged collateral).\n"
        "Everything else is real: QUIC over UDP loopback, RFC 9261 authenticators, the exporter\n"
        "binding, full DCAP verification (dcap-qvl) and the appraisal policy.",
        flush=True,
    )
    results = [
        run("server attests, client verifies", [], []),
        run("mutual attestation", ["--mutual"], ["--mutual"]),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
