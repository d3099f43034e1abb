"""Abuse limits without sockets: the token bucket, the session's re-attestation limit and its
control-stream abort and adapter-failure inputs."""

from __future__ import annotations

import pytest
from test_session import Side, pair, run

from attquic import CloseCode
from attquic.config import AttestationConfiguration
from attquic.errors import ConfigurationError, LocalError
from attquic.limits import TokenBucket
from attquic.session import AttestationSession, SessionConfiguration, SessionState
from attquic.tdx.simulated import SimulatedTdxAttester


def test_token_bucket_burst_then_refill() -> None:
    bucket = TokenBucket(burst=2, interval=10.0)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert not bucket.take(0.0) and not bucket.take(9.9)
    assert bucket.take(10.1)  # one token earned back
    assert not bucket.take(10.2)
    assert bucket.take(1000.0) and bucket.take(1000.0)  # refills to the burst, no more
    assert not bucket.take(1000.0)


def test_token_bucket_ignores_time_going_backwards() -> None:
    bucket = TokenBucket(burst=1, interval=1.0)
    assert bucket.take(5.0)
    assert not bucket.take(4.0)
    assert not bucket.take(5.5)
    assert bucket.take(6.0)


def test_token_bucket_with_no_burst_refuses_everything() -> None:
    bucket = TokenBucket(burst=0, interval=1.0)
    assert not any(bucket.take(float(t)) for t in range(100))


@pytest.mark.parametrize(("burst", "interval"), [(-1, 1.0), (1, 0.0), (1, -2.0)])
def test_token_bucket_rejects_bad_parameters(burst: int, interval: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(burst, interval)


def test_configuration_validates_the_reattestation_limit() -> None:
    attester = SimulatedTdxAttester()
    with pytest.raises(ConfigurationError):
        AttestationConfiguration(attester=attester, peer_reattest_burst=-1)
    with pytest.raises(ConfigurationError):
        AttestationConfiguration(attester=attester, peer_reattest_interval=0)
    with pytest.raises(LocalError):
        SessionConfiguration(
            is_client=True, attests=False, requires_peer_attestation=True, peer_reattest_interval=0
        )


def _reattest(client: Side, server: Side, now: float) -> None:
    client.session.request_attestation(now)
    run(client, server, now)


def test_session_closes_on_the_request_past_the_limit() -> None:
    """The initial request is free; then the default burst (4); the fifth re-attestation
    request within the refill interval closes with REQUEST_RATE_EXCEEDED."""
    client, server = pair()
    run(client, server)
    assert client.gate_opened == server.gate_opened == 1
    for i in range(4):
        _reattest(client, server, 2.0 + i * 0.01)
        assert server.closed is None and len(client.attested) == 2 + i
    _reattest(client, server, 2.1)
    assert server.closed is not None
    assert server.closed.code == CloseCode.REQUEST_RATE_EXCEEDED
    assert server.session.state is SessionState.CLOSED


def test_session_limit_refills_over_time() -> None:
    client, server = pair()
    run(client, server)
    for i in range(12):  # one every 10 s: sustained at exactly the default rate
        _reattest(client, server, 10.0 * (i + 1))
    assert server.closed is None and len(client.attested) == 13


@pytest.mark.parametrize("what", ["reset (RESET_STREAM)", "stopped (STOP_SENDING)"])
@pytest.mark.parametrize("after_gate", [False, True])
def test_control_stream_abort_is_a_protocol_violation(what: str, after_gate: bool) -> None:
    client, server = pair()
    if after_gate:
        run(client, server)
        assert server.gate_opened == 1
    server.session.control_stream_aborted(what)
    server.drain(3.0)
    assert server.closed is not None and server.closed.code == CloseCode.PROTOCOL_VIOLATION
    assert what in server.closed.reason
    server.session.control_stream_aborted(what)  # a closed session ignores it
    assert server.session.next_event() is None


def test_control_stream_abort_before_the_handshake() -> None:
    session = AttestationSession(
        SessionConfiguration(is_client=True, attests=False, requires_peer_attestation=True)
    )
    session.control_stream_aborted("reset (RESET_STREAM)")
    event = session.next_event()
    assert event is not None and getattr(event, "code", None) == CloseCode.PROTOCOL_VIOLATION


def test_adapter_failure_is_an_internal_error_once() -> None:
    _, server = pair()
    server.session.fail(RuntimeError("cannot write"))
    server.session.fail(RuntimeError("again"))
    server.drain(1.0)
    assert server.closed is not None and server.closed.code == CloseCode.INTERNAL_ERROR
    assert server.session.next_event() is None
