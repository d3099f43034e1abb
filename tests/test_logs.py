"""attquic.logs: records through the standard logging machinery, nothing configured at import,
stderr by default, console or JSON lines with attquic.logs.configure."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attquic import logs

ROOT = Path(__file__).resolve().parent.parent

_PROGRAM = """
import logging, sys
import attquic, attquic.simulated, attquic.tdx
assert logging.getLogger().handlers == [], "attquic configured the root logger"
assert logging.getLogger("attquic").handlers == [], "attquic configured its own logger"
assert logging.getLogger("attquic").propagate
from attquic.logs import get_logger
log = get_logger("attquic").bind(conn=7)
log.info("hidden.by.default", n=1)
log.warning("shown.on.stderr", n=2)
print("stdout: application output only")
"""


def test_nothing_is_configured_at_import_and_warnings_reach_stderr() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROGRAM],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "stdout: application output only\n"
    assert result.stderr == "shown.on.stderr conn=7 n=2\n"  # Python's last-resort handler


def test_configure_json_lines_and_levels() -> None:
    stream = io.StringIO()
    logs.configure(logging.INFO, log_format="json", stream=stream)
    logs.configure(logging.INFO, log_format="json", stream=stream)  # replaces, never doubles
    log = logs.get_logger("attquic.test").bind(conn=1, role="client", peer="127.0.0.1:4433")
    log.debug("dropped")
    log.info("gate.opened", held_bytes=0, data=b"\x01")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "gate.opened" and record["level"] == "info"
    assert record["logger"] == "attquic.test"
    assert (record["conn"], record["role"], record["peer"]) == (1, "client", "127.0.0.1:4433")
    assert record["held_bytes"] == 0 and record["data"] == "b'\\x01'"
    ours = [
        h for h in logging.getLogger("attquic").handlers if h.get_name() == "attquic.logs.configure"
    ]
    assert len(ours) == 1


def test_configure_console_and_quiet() -> None:
    stream = io.StringIO()
    logs.configure(logging.ERROR, stream=stream)
    log = logs.get_logger("attquic")
    log.warning("quiet.drops.warnings")
    log.error("attestation.failed", code="TIMEOUT", reason="two words")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("ERROR   attquic: attestation.failed code=TIMEOUT reason='two words'")


def test_records_carry_the_event_dict(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="attquic"):
        logs.get_logger("attquic").bind(conn=3).info("attestation.accepted", initial=True)
    (record,) = caplog.records
    assert getattr(record, logs.EVENT_ATTRIBUTE) == {
        "event": "attestation.accepted",
        "conn": 3,
        "initial": True,
    }
    assert record.getMessage() == "attestation.accepted conn=3 initial=True"
