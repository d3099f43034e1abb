"""The relying party's appraisal policy for verified TDX quotes.

An :class:`AppraisalPolicy` is a frozen, validated object; the same fields can come from a TOML
or JSON file (:meth:`AppraisalPolicy.from_toml`, :meth:`AppraisalPolicy.from_json`) or a plain
dict. :meth:`AppraisalPolicy.appraise` runs every rule and returns every mismatch, so a rejection
explains itself completely. See ``examples/policy.toml`` and docs/tdx.md.

Semantics, field by field:

* ``accepted_mrtd``, ``accepted_rtmr0`` .. ``accepted_rtmr3``, ``accepted_mrconfigid``,
  ``accepted_mrowner``: allowlists of 48-byte values (hex text or bytes). Empty = any value.
* ``allow_debug`` (default false): a debug TD (TDATTRIBUTES.DEBUG) is rejected unless true.
* ``require_sept_ve_disable`` (default true): TDATTRIBUTES.SEPT_VE_DISABLE must be set.
* ``accepted_tcb_statuses`` (default ``{"UpToDate"}``): Intel TCB status names.
* ``accepted_advisory_ids`` (default empty): every advisory the TCB level lists must be here.
* ``max_collateral_age_seconds`` (default none): ``now`` minus the oldest issue date of the TCB
  info, QE identity and PCK CRL may not exceed this.
"""

from __future__ import annotations

import functools
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from attquic.errors import ConfigurationError

if TYPE_CHECKING:
    from attquic.tdx.collateral import Collateral
    from attquic.tdx.quote import TdxQuote

__all__ = ["TCB_STATUSES", "AppraisalPolicy"]

TCB_STATUSES: Final = frozenset(
    {
        "UpToDate",
        "SWHardeningNeeded",
        "ConfigurationNeeded",
        "ConfigurationAndSWHardeningNeeded",
        "OutOfDate",
        "OutOfDateConfigurationNeeded",
        "TDRelaunchAdvised",
        "TDRelaunchAdvisedConfigurationNeeded",
    }
)
"""TCB statuses a policy may accept (Intel names; ``Revoked`` is always rejected by DCAP)."""

MEASUREMENT_SIZE: Final = 48

_MEASUREMENT_FIELDS: Final = (
    ("accepted_mrtd", "MRTD"),
    ("accepted_rtmr0", "RTMR0"),
    ("accepted_rtmr1", "RTMR1"),
    ("accepted_rtmr2", "RTMR2"),
    ("accepted_rtmr3", "RTMR3"),
    ("accepted_mrconfigid", "MRCONFIGID"),
    ("accepted_mrowner", "MROWNER"),
)

_BODY_FIELD: Final[dict[str, tuple[str, int | None]]] = {
    "accepted_mrtd": ("mrtd", None),
    "accepted_rtmr0": ("rtmrs", 0),
    "accepted_rtmr1": ("rtmrs", 1),
    "accepted_rtmr2": ("rtmrs", 2),
    "accepted_rtmr3": ("rtmrs", 3),
    "accepted_mrconfigid": ("mrconfigid", None),
    "accepted_mrowner": ("mrowner", None),
}
"""Where each allowlisted measurement sits in a TD report body (attribute, index)."""


@dataclass(frozen=True)
class AppraisalPolicy:
    """What a verified TDX quote must show to be accepted (defaults: production-safe)."""

    accepted_mrtd: tuple[bytes, ...] = ()
    accepted_rtmr0: tuple[bytes, ...] = ()
    accepted_rtmr1: tuple[bytes, ...] = ()
    accepted_rtmr2: tuple[bytes, ...] = ()
    accepted_rtmr3: tuple[bytes, ...] = ()
    accepted_mrconfigid: tuple[bytes, ...] = ()
    accepted_mrowner: tuple[bytes, ...] = ()
    allow_debug: bool = False
    require_sept_ve_disable: bool = True
    accepted_tcb_statuses: frozenset[str] = field(default_factory=lambda: frozenset({"UpToDate"}))
    accepted_advisory_ids: frozenset[str] = frozenset()
    max_collateral_age_seconds: float | None = None

    def __post_init__(self) -> None:
        for name, label in _MEASUREMENT_FIELDS:
            object.__setattr__(self, name, _measurements(getattr(self, name), label))
        for name in ("allow_debug", "require_sept_ve_disable"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be a boolean")
        statuses = _strings(self.accepted_tcb_statuses, "accepted_tcb_statuses")
        unknown = sorted(statuses - TCB_STATUSES)
        if unknown:
            raise ConfigurationError(
                f"accepted_tcb_statuses: unknown TCB status {', '.join(unknown)} "
                f"(known: {', '.join(sorted(TCB_STATUSES))})"
            )
        if not statuses:
            raise ConfigurationError("accepted_tcb_statuses is empty: nothing could be accepted")
        object.__setattr__(self, "accepted_tcb_statuses", statuses)
        advisories = _strings(self.accepted_advisory_ids, "accepted_advisory_ids")
        object.__setattr__(self, "accepted_advisory_ids", advisories)
        age = self.max_collateral_age_seconds
        if age is not None and (
            isinstance(age, bool) or not isinstance(age, int | float) or not age > 0
        ):
            raise ConfigurationError("max_collateral_age_seconds must be a positive number")

    # --- loaders ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AppraisalPolicy:
        """Build from a mapping whose keys are the field names; unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ConfigurationError("policy must be a table/object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"unknown policy field(s): {', '.join(map(str, unknown))}")
        return cls(**dict(data))

    @classmethod
    def from_toml(cls, source: str | os.PathLike[str]) -> AppraisalPolicy:
        """Load from TOML text, or from a file when ``source`` is a path (``Path`` or a
        string naming an existing ``.toml`` file)."""
        text = _read_source(source, ".toml")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"policy is not valid TOML: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> AppraisalPolicy:
        """Load from JSON text, or from a file when ``source`` is a path."""
        text = _read_source(source, ".json")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"policy is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> AppraisalPolicy:
        """Load a ``.json`` file as JSON and anything else as TOML."""
        if str(path).lower().endswith(".json"):
            return cls.from_json(Path(path))
        return cls.from_toml(Path(path))

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data (hex strings, sorted lists); ``from_dict`` inverts it."""
        out: dict[str, Any] = {}
        for name, _ in _MEASUREMENT_FIELDS:
            out[name] = [value.hex() for value in getattr(self, name)]
        out["allow_debug"] = self.allow_debug
        out["require_sept_ve_disable"] = self.require_sept_ve_disable
        out["accepted_tcb_statuses"] = sorted(self.accepted_tcb_statuses)
        out["accepted_advisory_ids"] = sorted(self.accepted_advisory_ids)
        out["max_collateral_age_seconds"] = self.max_collateral_age_seconds
        return out

    # --- appraisal -------------------------------------------------------------------------

    def appraise(
        self,
        quote: TdxQuote,
        tcb_status: str | None,
        advisory_ids: Iterable[str],
        collateral: Collateral | None,
        now: float,
    ) -> list[str]:
        """Every way ``quote`` (already verified) falls short of this policy; empty = accept.

        ``tcb_status`` is ``None`` when DCAP stopped before reporting one; the TCB rules are
        then skipped (the caller has its own reason for that stop).
        """
        reasons = self.measurement_mismatches(quote)
        attributes = quote.body.td_attributes
        if attributes.debug and not self.allow_debug:
            reasons.append("TD is in debug mode (TDATTRIBUTES.DEBUG is set); allow_debug is false")
        if self.require_sept_ve_disable and not attributes.sept_ve_disable:
            reasons.append("TDATTRIBUTES.SEPT_VE_DISABLE is not set; the policy requires it")
        if tcb_status is not None and tcb_status not in self.accepted_tcb_statuses:
            reasons.append(
                f"TCB status {tcb_status} is not accepted "
                f"(accepted: {', '.join(sorted(self.accepted_tcb_statuses))})"
            )
        for advisory in advisory_ids:
            if advisory not in self.accepted_advisory_ids:
                reasons.append(f"advisory {advisory} applies to this TCB and is not accepted")
        if self.max_collateral_age_seconds is not None and collateral is not None:
            age = now - collateral.issued_at
            if age > self.max_collateral_age_seconds:
                reasons.append(
                    f"collateral is {age:.0f} s old, more than max_collateral_age_seconds "
                    f"({self.max_collateral_age_seconds:g})"
                )
        return reasons

    def measurement_mismatches(self, quote: TdxQuote) -> list[str]:
        """The MRTD / RTMR / MRCONFIGID / MROWNER rules that ``quote`` fails."""
        body = quote.body
        reasons = []
        for label, accepted, attribute, index in self._measurement_rules:
            value = getattr(body, attribute)
            if index is not None:
                value = value[index]
            if value not in accepted:
                reasons.append(f"{label} {value.hex()} is not an accepted value")
        return reasons

    @functools.cached_property
    def _measurement_rules(self) -> tuple[tuple[str, tuple[bytes, ...], str, int | None], ...]:
        """The non-empty allowlists, in :data:`_MEASUREMENT_FIELDS` order, with where each
        value sits in a TD report body (attribute, index into it): computed once, not per
        appraisal."""
        rules = []
        for name, label in _MEASUREMENT_FIELDS:
            accepted: tuple[bytes, ...] = getattr(self, name)
            if accepted:
                rules.append((label, accepted, *_BODY_FIELD[name]))
        return tuple(rules)


def _measurements(values: object, label: str) -> tuple[bytes, ...]:
    if values is None:
        return ()
    if isinstance(values, str | bytes | bytearray) or not isinstance(values, Iterable):
        raise ConfigurationError(f"accepted {label} values must be a list")
    out = []
    for value in values:
        if isinstance(value, str):
            text = value.strip().lower().removeprefix("0x")
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raise ConfigurationError(f"accepted {label} value is not hex: {value!r}") from None
        elif isinstance(value, bytes | bytearray):
            raw = bytes(value)
        else:
            raise ConfigurationError(f"accepted {label} value must be hex text or bytes")
        if len(raw) != MEASUREMENT_SIZE:
            raise ConfigurationError(
                f"accepted {label} value has {len(raw)} bytes, expected {MEASUREMENT_SIZE}"
            )
        out.append(raw)
    return tuple(out)


def _strings(values: object, name: str) -> frozenset[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ConfigurationError(f"{name} must be a list of strings")
    items = list(values)
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigurationError(f"{name} must be a list of non-empty strings")
    return frozenset(items)


def _read_source(source: str | os.PathLike[str], suffix: str) -> str:
    path: Path | None = None
    if isinstance(source, os.PathLike):
        path = Path(source)
    elif source.strip().lower().endswith(suffix) and "\n" not in source:
        path = Path(source.strip())
    if path is None:
        return str(source)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read policy file {path}: {exc}") from None
