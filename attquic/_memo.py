"""``memoized_property``: :func:`functools.cached_property` without the per-class lock.

On Python 3.11 every first access of a ``cached_property`` takes a class-wide lock (removed in
3.12); the exchange's immutable messages compute a handful of such values per connection. This
descriptor stores the value in the instance ``__dict__`` on first access like
``cached_property`` (later reads never reach it) and takes no lock: two threads racing on a
first access both compute the same pure value. Only for pure functions of immutable objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

__all__ = ["memoized_property"]

_T = TypeVar("_T")


class memoized_property(Generic[_T]):
    __slots__ = ("__doc__", "_func", "_name")

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self._func = func
        self._name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> memoized_property[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self._func(instance)
        instance.__dict__[self._name] = value
        return value
