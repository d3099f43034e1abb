"""Eager tasks: run a coroutine inline up to its first suspension, then as an ordinary task.

The adapter starts evidence production and verification from inside aioquic's event processing.
As a plain task the coroutine would start one event-loop iteration later, after aioquic's
transmit, so its answer would need a transmit of its own. Started eagerly, a coroutine that
never suspends (the simulated attester, an inline DCAP verification) is finished before
:func:`eager_task` returns, and its output leaves in the same transmit.

Semantics are those of ``asyncio.Task(..., eager_start=True)`` (Python 3.12+), which is used
when available. On 3.11 the same is done by hand: the task object is created first and is the
current task while the first step runs (``asyncio.current_task()`` and anyio's cancel scopes
see the task the rest of the coroutine runs in); the task then picks the coroutine up where the
first step left it. Started from inside a running task, that task steps aside for the first
step and is current again when :func:`eager_task` returns.

Exceptions never escape :func:`eager_task`: whatever the first step raises ends up in the task,
as it would for any task (callers retrieve it in a done callback).
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["eager_task"]

_T = TypeVar("_T")


def eager_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
    """A task running ``coro``, whose first step already ran when this returns (see module)."""
    if sys.version_info >= (3, 12):  # pragma: no cover - the machine this was built on has 3.11
        return asyncio.Task(coro, loop=loop, eager_start=True)
    step: _FirstStep[_T] = _FirstStep()  # not _FirstStep[_T](): typing's call costs ~5 us
    task = loop.create_task(_resume(coro, step))
    # the task is current during its first step; a task that starts it (a nested eager start)
    # is current again afterwards, as with 3.12's swap of the current task
    outer = asyncio.current_task(loop)
    if outer is not None:
        asyncio.tasks._leave_task(loop, outer)
    asyncio.tasks._enter_task(loop, task)
    try:
        step.suspended_on = coro.send(None)
    except StopIteration as stop:
        step.finished, step.result = True, stop.value
    except BaseException as exc:  # goes into the task, like any exception of a task's step
        step.finished, step.error = True, exc
    finally:
        asyncio.tasks._leave_task(loop, task)
        if outer is not None:
            asyncio.tasks._enter_task(loop, outer)
    if not step.finished:
        task.add_done_callback(lambda done: _close_if_never_resumed(coro, step))
    return task


@dataclass
class _FirstStep(Generic[_T]):
    finished: bool = False
    result: _T | None = None
    error: BaseException | None = None
    suspended_on: Any = None
    resumed: bool = False


@types.coroutine
def _resume(coro: Coroutine[Any, Any, _T], step: _FirstStep[_T]) -> Generator[Any, Any, _T]:
    """The task's body: the outcome of the first step, or the rest of ``coro``."""
    step.resumed = True
    if step.error is not None:
        error, step.error = step.error, None
        raise error
    if step.finished:
        return step.result  # type: ignore[return-value]  # _T, set with finished
    pending = step.suspended_on
    while True:
        try:
            yield pending  # what coro awaits: the task waits on it as if coro had yielded it
        except BaseException as exc:  # cancellation (or a throw) while waiting: hand it over
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            continue
        # the awaited future is done: coro resumes on send(None), as under a task
        return (yield from coro.__await__())


def _close_if_never_resumed(coro: Coroutine[Any, Any, Any], step: _FirstStep[Any]) -> None:
    """A task cancelled before its first step never ran :func:`_resume`: close ``coro`` so that
    its ``finally`` blocks run now rather than at garbage collection."""
    if not step.resumed:
        coro.close()
