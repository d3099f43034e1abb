"""attquic._eager: a coroutine runs inline up to its first suspension, then as its own task."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
import pytest

from attquic._eager import eager_task

pytestmark = pytest.mark.anyio

_T = TypeVar("_T")


async def from_callback(start: Callable[[], _T]) -> _T:
    """Run ``start`` in a plain event-loop callback (no current task), as aioquic does."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()

    def callback() -> None:
        try:
            done.set_result(start())
        except BaseException as exc:  # the test inspects it
            done.set_exception(exc)

    loop.call_soon(callback)
    return await done


async def test_a_coroutine_that_never_suspends_is_done_when_started() -> None:
    log: list[str] = []

    async def work() -> int:
        log.append("ran")
        return 7

    def start() -> tuple[list[str], asyncio.Task[int]]:
        task = eager_task(asyncio.get_running_loop(), work())
        return list(log), task  # what had happened by the time eager_task returned

    seen, task = await from_callback(start)
    assert seen == ["ran"]
    assert await task == 7


async def test_the_first_step_runs_as_the_task() -> None:
    current: list[asyncio.Task[Any] | None] = []

    async def work() -> None:
        current.append(asyncio.current_task())
        await asyncio.sleep(0)
        current.append(asyncio.current_task())

    task = await from_callback(lambda: eager_task(asyncio.get_running_loop(), work()))
    await task
    assert current == [task, task]


async def test_a_suspended_coroutine_continues_in_its_task() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def work() -> str:
        steps.append("first")
        value = await gate
        steps.append(value)
        await asyncio.sleep(0)
        return value.upper()

    task = await from_callback(lambda: eager_task(asyncio.get_running_loop(), work()))
    assert steps == ["first"]
    await asyncio.sleep(0.01)
    assert not task.done()
    gate.set_result("second")
    assert await task == "SECOND"
    assert steps == ["first", "second"]


async def test_cancellation_reaches_the_suspended_coroutine() -> None:
    events: list[str] = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        finally:
            events.append("finally")

    task = await from_callback(lambda: eager_task(asyncio.get_running_loop(), work()))
    await asyncio.sleep(0.01)  # the task has taken over the coroutine
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["cancelled", "finally"]


async def test_cancelled_before_the_task_ran_closes_the_coroutine() -> None:
    events: list[str] = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            events.append("finally")

    def start_and_cancel() -> asyncio.Task[None]:
        task = eager_task(asyncio.get_running_loop(), work())
        task.cancel()  # in the same step: the task never ran
        return task

    task = await from_callback(start_and_cancel)
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)  # the task's done callbacks run
    assert events == ["finally"]


@pytest.mark.parametrize("suspend_first", [False, True])
async def test_exceptions_land_in_the_task(suspend_first: bool) -> None:
    async def work() -> None:
        if suspend_first:
            await asyncio.sleep(0)
        raise LookupError("boom")

    task = await from_callback(lambda: eager_task(asyncio.get_running_loop(), work()))
    with pytest.raises(LookupError, match="boom"):
        await task


async def test_anyio_worker_threads_work_from_an_eager_start() -> None:
    """anyio's cancel scopes belong to a task: the first step and the rest share one."""
    threads: list[int] = []

    async def work() -> int:
        def in_thread() -> int:
            threads.append(threading.get_ident())
            return 42

        return await anyio.to_thread.run_sync(in_thread)

    task = await from_callback(lambda: eager_task(asyncio.get_running_loop(), work()))
    assert await task == 42
    assert threads and threads[0] != threading.get_ident()


async def test_inside_a_task_it_still_runs_to_completion() -> None:
    async def work(value: int) -> int:
        await asyncio.sleep(0)
        return value

    tasks = [eager_task(asyncio.get_running_loop(), work(n)) for n in range(3)]
    waits: list[Awaitable[int]] = list(tasks)
    assert await asyncio.gather(*waits) == [0, 1, 2]


async def test_a_nested_start_runs_inline_and_hands_the_current_task_back() -> None:
    """Started from inside a task's step (the batcher's worker, started by the evidence task),
    the new task is current for its first step and the starting task is current again after."""
    loop = asyncio.get_running_loop()
    seen: dict[str, object] = {}

    async def inner() -> str:
        seen["inner"] = asyncio.current_task()
        return "inner done"

    async def outer() -> None:
        seen["outer"] = asyncio.current_task()
        task = eager_task(loop, inner())
        seen["inline"] = "inner" in seen
        seen["task"] = task
        seen["after"] = asyncio.current_task()
        seen["result"] = await task

    outer_task = await from_callback(lambda: eager_task(loop, outer()))
    await outer_task
    assert seen["inline"]  # the first step ran before eager_task returned...
    assert seen["inner"] is seen["task"]  # ...as the inner task itself...
    assert seen["after"] is seen["outer"] is outer_task  # ...and gave the loop back
    assert seen["result"] == "inner done"
