"""Building frozen dataclass instances on the verification hot path.

CPython's generated ``__init__`` of a ``frozen=True`` dataclass sets every field through
``object.__setattr__`` (~0.25 us a field on the reference VM); a verified quote builds about
70 fields' worth of frozen objects (quote model, result, verdict), which was a third of
attquic's own work around dcap-qvl. :func:`build` fills the instance dictionary in one step
instead. The instance is the same as the constructor's: same class, same ``__dict__`` (tests
compare both ways of building), still immutable afterwards.

Only for frozen dataclasses with an instance ``__dict__`` (not ``slots=True``) and no
``__post_init__``; the caller passes every field, defaults included, in declaration order.
"""

from __future__ import annotations

from typing import Any, TypeVar

_T = TypeVar("_T")

_new = object.__new__


def build(cls: type[_T], fields: dict[str, Any]) -> _T:
    """An instance of ``cls`` whose attributes are exactly ``fields`` (see the module doc)."""
    instance = _new(cls)
    instance.__dict__.update(fields)
    return instance
