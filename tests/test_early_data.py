"""The early-data buffer and the server-wide budget (no sockets)."""

from __future__ import annotations

import pytest

from attquic.early_data import STREAM_CHARGE, EarlyDataBudget, EarlyDataBuffer

C = STREAM_CHARGE


def test_held_data_is_released_in_arrival_order() -> None:
    buffer = EarlyDataBuffer(limit=2 * C + 100)
    assert buffer.hold(4, b"ab", False)
    assert buffer.hold(8, b"x", True)
    assert buffer.hold(4, b"cd", True)
    assert buffer.size == 2 * C + 5
    assert buffer.streams == 2 and 4 in buffer and 12 not in buffer
    assert buffer.take() == {4: [(b"ab", False), (b"cd", True)], 8: [(b"x", True)]}
    assert buffer.size == 0 and buffer.streams == 0


def test_per_connection_limit() -> None:
    buffer = EarlyDataBuffer(limit=C + 10)
    assert buffer.hold(4, b"x" * 10, False)
    assert not buffer.hold(4, b"y", False)  # one byte past the bound
    assert not buffer.hold(8, b"", True)  # a new stream costs its charge even when empty
    assert buffer.size == C + 10  # the refused bytes were not held
    buffer.drop(4)
    assert buffer.size == 0
    assert buffer.hold(8, b"y", False)


def test_empty_streams_are_charged() -> None:
    """A flood of empty FIN streams is bounded like a flood of bytes."""
    budget = EarlyDataBudget(limit=100 * C)
    buffer = EarlyDataBuffer(limit=10 * C, budget=budget)
    held = sum(buffer.hold(stream_id, b"", True) for stream_id in range(2, 4000, 4))
    assert held == 10 and buffer.streams == 10
    assert budget.held == 10 * C
    buffer.clear()
    assert budget.held == 0 and buffer.streams == 0


def test_budget_is_shared_across_connections_and_returned() -> None:
    budget = EarlyDataBudget(limit=2 * C + 10)
    first = EarlyDataBuffer(limit=C + 8, budget=budget)
    second = EarlyDataBuffer(limit=C + 8, budget=budget)
    assert first.hold(4, b"x" * 6, False)
    assert not second.hold(4, b"y" * 6, False)  # within its own limit, over the shared budget
    assert second.hold(4, b"y" * 4, False)
    assert budget.held == 2 * C + 10
    first.take()
    assert budget.held == C + 4
    second.clear()
    assert budget.held == 0


def test_dropping_an_unknown_stream_is_harmless() -> None:
    budget = EarlyDataBudget(limit=10)
    buffer = EarlyDataBuffer(limit=10, budget=budget)
    buffer.drop(12)
    assert budget.held == 0


def test_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError):
        EarlyDataBudget(-1)
