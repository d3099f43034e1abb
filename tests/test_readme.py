"""The README's Python blocks run as written: the quick-start server and client over real UDP.

Every ```python block of README.md must be one of the files the test knows (so a new block
cannot rot untested). The server runs as its own process; the client connects to it and must
print the verified attestation and the echo. Only the port is changed (a free one instead of
4433), so parallel runs cannot collide.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.network

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
START_TIMEOUT = 60.0


def python_blocks() -> dict[str, str]:
    """The README's Python blocks by the file name of their first line (``# server.py: ...``)."""
    blocks: dict[str, str] = {}
    for code in BLOCK.findall(README.read_text()):
        first = code.splitlines()[0]
        match = re.match(r"# (\w+\.py)\b", first)
        assert match, f"README python block without a '# name.py' first line: {first!r}"
        blocks[match.group(1)] = code
    return blocks


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_every_python_block_is_run_by_this_test() -> None:
    assert set(python_blocks()) == {"server.py", "client.py"}


def test_quick_start_server_and_client_run_as_written(tmp_path: Path) -> None:
    blocks = python_blocks()
    port = str(_free_udp_port())
    for name, code in blocks.items():
        assert "4433" in code
        (tmp_path / name).write_text(code.replace("4433", port))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, str(tmp_path / "server.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # blocks until the server printed (or died)
        assert line.strip() == f"listening on 127.0.0.1:{port}", line
        client = subprocess.run(
            [sys.executable, str(tmp_path / "client.py")],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )
    finally:
        server.terminate()
        try:
            _, server_err = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            _, server_err = server.communicate()
    assert client.returncode == 0, client.stderr
    out = client.stdout.splitlines()
    assert out[0].startswith("server attested: TCB UpToDate, MRTD ")
    assert out[0].endswith("TrustAnchor.TEST_ROOT")
    assert out[1:] == ["hello, attested world"]
    # one simulated-TDX warning per process, on stderr (never stdout)
    assert client.stderr.count("SimulatedTdxWarning") == 1, client.stderr
    assert server_err.count("SimulatedTdxWarning") == 1, server_err
    assert "Traceback" not in server_err
