"""The early-data buffer and the server-wide budget (no sockets)."""

from __future__ import annotations

import pytest

from attquic.early_data import EarlyDataBudget, EarlyDataBuffer


def test_held_data_is_released_in_arrival_order() -> None:
    buffer = EarlyDataBuffer(limit=100)
    assert buffer.hold(4, b"ab", False)
    assert buffer.hold(8, b"x", True)
    assert buffer.hold(4, b"cd", True)
    assert buffer.size == 5
    assert buffer.take() == {4: [(b"ab", False), (b"cd", True)], 8: [(b"x", True)]}
    assert buffer.size == 0


def test_per_connection_limit() -> None:
    buffer = EarlyDataBuffer(limit=10)
    assert buffer.hold(4, b"x" * 10, False)
    assert not buffer.hold(8, b"y", False)
    assert buffer.size == 10  # the refused bytes were not held
    buffer.drop(4)
    assert buffer.size == 0
    assert buffer.hold(8, b"y", False)


def test_budget_is_shared_across_connections_and_returned() -> None:
    budget = EarlyDataBudget(limit=10)
    first = EarlyDataBuffer(limit=8, budget=budget)
    second = EarlyDataBuffer(limit=8, budget=budget)
    assert first.hold(4, b"x" * 6, False)
    assert not second.hold(4, b"y" * 6, False)  # within its own limit, over the shared budget
    assert second.hold(4, b"y" * 4, False)
    assert budget.held == 10
    first.take()
    assert budget.held == 4
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
