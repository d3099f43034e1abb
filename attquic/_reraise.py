"""Raising a stored exception without tying it to the object that stores it.

A connection or stream keeps the error that ended it and raises it again on every later call.
Raising the stored object itself gives it a ``__traceback__`` whose frames hold the caller's
locals, ``self`` among them: stream -> error -> traceback -> frame -> stream, a reference cycle
that only the cyclic garbage collector frees (and that keeps every frame of the call alive until
then). :func:`fresh_copy` makes the object to raise instead; the stored original never gets a
traceback, so a finished connection is freed by reference counting.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["fresh_copy"]

_Error = TypeVar("_Error", bound=BaseException)


def fresh_copy(error: _Error) -> _Error:
    """A copy of ``error`` (type, arguments, attributes, cause) with no traceback."""
    copy = type(error).__new__(type(error), *error.args)
    copy.__dict__.update(error.__dict__)
    copy.__cause__ = error.__cause__
    copy.__suppress_context__ = error.__suppress_context__
    return copy
