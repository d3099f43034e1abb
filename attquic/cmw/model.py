"""The CMW data model: typed, immutable records, tags and collections.

A CMW is a tree. Its leaves are :class:`CMWRecord` (``[type, value, ?ind]``) and
:class:`CMWTag` (``#6.TN(cf)(bstr)``); its inner nodes are :class:`CMWCollection` (a map from
labels to CMWs, with an optional collection type ``__cmwc_t``). The constructors validate every
field, so any instance is a valid CMW; the codecs build instances through them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeAlias, overload

from attquic import profile
from attquic.cmw.errors import (
    EmptyCollection,
    InvalidCollectionType,
    InvalidContentFormat,
    InvalidIndicator,
    InvalidLabel,
    InvalidMediaType,
    InvalidTagNumber,
    WrongType,
)

__all__ = [
    "CMW",
    "CMWC_T",
    "MAX_CONTENT_FORMAT",
    "MAX_TN_CONTENT_FORMAT",
    "TN_FIRST",
    "TN_LAST",
    "CMWCollection",
    "CMWRecord",
    "CMWTag",
    "Indicator",
    "Label",
    "cf_from_tn",
    "is_valid_collection_type",
    "is_valid_label",
    "is_valid_media_type",
    "iter_leaves",
    "tn",
]

#: The reserved collection key holding the collection type.
CMWC_T: Final = "__cmwc_t"

#: CoAP Content-Formats are 16-bit unsigned integers.
MAX_CONTENT_FORMAT: Final = 0xFFFF
#: RFC 9277 TN() is defined for C-F 0..65024; 65025..65535 have no tag.
MAX_TN_CONTENT_FORMAT: Final = 65024
#: The RFC 9277 tag range: TN(0) .. TN(65024).
TN_FIRST: Final = 0x63740101  # 1668546817
TN_LAST: Final = 1668612095

_CBOR_INT_MIN: Final = -(1 << 64)
_CBOR_INT_MAX: Final = (1 << 64) - 1


class Indicator(enum.IntFlag):
    """The ``ind`` bitmap: which conceptual-message types a record carries."""

    REFERENCE_VALUES = profile.IND_REFERENCE_VALUES
    ENDORSEMENTS = profile.IND_ENDORSEMENTS
    EVIDENCE = profile.IND_EVIDENCE
    ATTESTATION_RESULTS = profile.IND_ATTESTATION_RESULTS
    APPRAISAL_POLICY = profile.IND_APPRAISAL_POLICY


_ALL_INDICATOR_BITS: Final = int(
    Indicator.REFERENCE_VALUES
    | Indicator.ENDORSEMENTS
    | Indicator.EVIDENCE
    | Indicator.ATTESTATION_RESULTS
    | Indicator.APPRAISAL_POLICY
)

# --- RFC 9277 TN() ---------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def tn(cf: int) -> int:
    """The CBOR tag number RFC 9277 (Appendix B) derives from CoAP Content-Format ``cf``."""
    if not _is_int(cf) or not 0 <= cf <= MAX_TN_CONTENT_FORMAT:
        raise InvalidContentFormat(f"Content-Format {cf!r} has no TN() tag (0..65024)")
    return TN_FIRST + (cf // 255) * 256 + cf % 255


def cf_from_tn(tag: int) -> int:
    """The CoAP Content-Format a TN() tag number stands for (inverse of :func:`tn`)."""
    if not _is_int(tag) or not TN_FIRST <= tag <= TN_LAST:
        raise InvalidTagNumber(f"tag {tag!r} is outside the TN() range {TN_FIRST}..{TN_LAST}")
    high, low = divmod(tag - TN_FIRST, 256)
    if low == 255:
        raise InvalidTagNumber(f"tag {tag} is not in the image of TN()")
    return high * 255 + low


# --- field syntax ----------------------------------------------------------------------------

# RFC 9110 §8.3.1 media-type (ASCII only: obs-text is refused). Possessive quantifiers keep
# matching linear on hostile input (whitespace runs could otherwise be split many ways).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]++"
_QUOTED_STRING = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*+"'
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*+;[ \t]*+(?:{_TOKEN}=(?:{_TOKEN}|{_QUOTED_STRING}))?+)*+"
)
# draft-ietf-rats-msg-wrap common-types.cddl: oid = "([0-2])((\.0)|(\.[1-9][0-9]*))*"
_OID = re.compile(r"[0-2](?:\.0|\.[1-9][0-9]*+)*+")
# RFC 3986 URI: scheme ":" then only URI characters, valid %HH escapes, at most one "#".
_URI_CHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})"
_URI = re.compile(rf"[A-Za-z][A-Za-z0-9+\-.]*+:{_URI_CHAR}*+(?:#{_URI_CHAR}*+)?+")


def is_valid_media_type(value: object) -> bool:
    """True if ``value`` is a Content-Type string (RFC 9110 media-type with parameters)."""
    if type(value) is str and value in _VALID_MEDIA_TYPES:  # exact str: no subclass hashing
        return True
    if not isinstance(value, str) or _MEDIA_TYPE.fullmatch(value) is None:
        return False
    if type(value) is str and len(_VALID_MEDIA_TYPES) < _MAX_REMEMBERED_MEDIA_TYPES:
        _VALID_MEDIA_TYPES.add(value)
    return True


#: Media types that matched: every record of an exchange carries one of a handful, and the
#: regular expression costs more than the rest of a record's checks. Bounded: a peer sending
#: ever new types only costs the match for those past the bound.
_VALID_MEDIA_TYPES: set[str] = set()
_MAX_REMEMBERED_MEDIA_TYPES: Final = 256


def is_valid_collection_type(value: object) -> bool:
    """True if ``value`` is an absolute URI or a dotted OID (the ``__cmwc_t`` syntax)."""
    if not isinstance(value, str):
        return False
    return _OID.fullmatch(value) is not None or _URI.fullmatch(value) is not None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a JSON \ud800 escape
        return False
    return True


def is_valid_label(value: object) -> bool:
    """True if ``value`` may label a collection item: a CBOR int, or non-blank text.

    ``__cmwc_t`` is reserved for the collection type. Whitespace-only text is refused (as the
    Go and Rust CMW libraries do): such labels are indistinguishable to a human reader.
    """
    if _is_int(value):
        assert isinstance(value, int)
        return _CBOR_INT_MIN <= value <= _CBOR_INT_MAX
    if isinstance(value, str):
        return value != CMWC_T and value.strip() != "" and _is_utf8(value)
    return False


# --- the tree --------------------------------------------------------------------------------

Label: TypeAlias = int | str


@dataclass(frozen=True)
class CMWRecord:
    """A CMW record ``[type, value, ?ind]``.

    ``type`` is a media type (``str``, usable in CBOR and JSON) or a CoAP Content-Format number
    (``int``, CBOR only). ``ind`` is the conceptual-message indicator bitmap, or ``None`` when
    absent.
    """

    type: str | int
    value: bytes
    ind: int | None = None

    def __post_init__(self) -> None:
        if _is_int(self.type):
            assert isinstance(self.type, int)
            if not 0 <= self.type <= MAX_CONTENT_FORMAT:
                raise InvalidContentFormat(f"Content-Format {self.type} is not in 0..65535")
        elif isinstance(self.type, str):
            if not is_valid_media_type(self.type):
                raise InvalidMediaType(f"invalid media type {self.type!r}")
        else:
            raise WrongType(f"record type must be str or int, not {type(self.type).__name__}")
        if isinstance(self.value, bytearray | memoryview):
            object.__setattr__(self, "value", bytes(self.value))
        elif not isinstance(self.value, bytes):
            raise WrongType(f"record value must be bytes, not {type(self.value).__name__}")
        if self.ind is not None:
            if not _is_int(self.ind):
                raise WrongType(f"indicator must be an int, not {type(self.ind).__name__}")
            if not 0 < self.ind <= _ALL_INDICATOR_BITS:
                raise InvalidIndicator(f"indicator {self.ind} is not in 1..{_ALL_INDICATOR_BITS}")

    @property
    def media_type(self) -> str | None:
        """The media type, or ``None`` when the type is a Content-Format number."""
        return self.type if isinstance(self.type, str) else None

    @property
    def content_format(self) -> int | None:
        """The CoAP Content-Format, or ``None`` when the type is a media type."""
        return self.type if isinstance(self.type, int) else None

    @property
    def indicator(self) -> Indicator:
        """The indicator as flags (empty when ``ind`` is absent)."""
        return Indicator(self.ind or 0)

    @property
    def is_reference_values(self) -> bool:
        return Indicator.REFERENCE_VALUES in self.indicator

    @property
    def is_endorsements(self) -> bool:
        return Indicator.ENDORSEMENTS in self.indicator

    @property
    def is_evidence(self) -> bool:
        """True if ``ind`` marks the value as Evidence."""
        return Indicator.EVIDENCE in self.indicator

    @property
    def is_attestation_results(self) -> bool:
        """True if ``ind`` marks the value as Attestation Results."""
        return Indicator.ATTESTATION_RESULTS in self.indicator

    @property
    def is_appraisal_policy(self) -> bool:
        return Indicator.APPRAISAL_POLICY in self.indicator


@dataclass(frozen=True)
class CMWTag:
    """A CMW in CBOR tag form ``#6.TN(cf)(bstr)``; ``number`` is the tag number."""

    number: int
    value: bytes

    def __post_init__(self) -> None:
        cf_from_tn(self.number)  # validates the range and the TN() image
        if isinstance(self.value, bytearray | memoryview):
            object.__setattr__(self, "value", bytes(self.value))
        elif not isinstance(self.value, bytes):
            raise WrongType(f"tag value must be bytes, not {type(self.value).__name__}")

    @classmethod
    def from_content_format(cls, cf: int, value: bytes) -> CMWTag:
        """The tag form of a message of Content-Format ``cf``."""
        return cls(tn(cf), value)

    @property
    def content_format(self) -> int:
        """The CoAP Content-Format the tag number stands for."""
        return cf_from_tn(self.number)


@dataclass(frozen=True, eq=False, init=False)
class CMWCollection:
    """A CMW collection: labelled CMWs and an optional collection type (``__cmwc_t``).

    ``items`` is copied into a read-only mapping that keeps the given order (encoders write
    items in this order unless asked for deterministic output). Equality and hashing ignore
    the order, since the position of an item in a collection has no meaning.
    """

    items: Mapping[Label, CMW]
    cmwc_t: str | None = None

    # Mapping is invariant in its key type: the overloads let str-keyed and int-keyed dicts in
    # as well as literals with mixed labels.
    @overload
    def __init__(self, items: Mapping[Label, CMW], cmwc_t: str | None = None) -> None: ...
    @overload
    def __init__(self, items: Mapping[str, CMW], cmwc_t: str | None = None) -> None: ...
    @overload
    def __init__(self, items: Mapping[int, CMW], cmwc_t: str | None = None) -> None: ...

    def __init__(
        self,
        items: Mapping[Label, CMW] | Mapping[str, CMW] | Mapping[int, CMW],
        cmwc_t: str | None = None,
    ) -> None:
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "cmwc_t", cmwc_t)
        self.__post_init__()

    def __post_init__(self) -> None:
        source: object = self.items
        if not isinstance(source, Mapping):
            raise WrongType(f"collection items must be a mapping, not {type(source).__name__}")
        frozen: dict[Label, CMW] = {}
        for label, item in source.items():
            if not is_valid_label(label):
                raise InvalidLabel(f"invalid collection label {label!r}")
            if not isinstance(item, CMWRecord | CMWTag | CMWCollection):
                raise WrongType(f"item {label!r} is not a CMW: {type(item).__name__}")
            frozen[label] = item
        if not frozen:
            raise EmptyCollection("a collection must hold at least one CMW")
        if self.cmwc_t is not None and not is_valid_collection_type(self.cmwc_t):
            raise InvalidCollectionType(
                f"__cmwc_t {self.cmwc_t!r} is neither an absolute URI nor a dotted OID"
            )
        object.__setattr__(self, "items", MappingProxyType(frozen))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CMWCollection):
            return NotImplemented
        return self.cmwc_t == other.cmwc_t and dict(self.items) == dict(other.items)

    def __hash__(self) -> int:
        return hash((self.cmwc_t, frozenset(self.items.items())))

    def __repr__(self) -> str:
        return f"CMWCollection(items={dict(self.items)!r}, cmwc_t={self.cmwc_t!r})"

    def __getitem__(self, label: Label) -> CMW:
        return self.items[label]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Label]:
        return iter(self.items)


CMW: TypeAlias = CMWRecord | CMWTag | CMWCollection


def iter_leaves(cmw: CMW) -> Iterator[tuple[tuple[Label, ...], CMWRecord | CMWTag]]:
    """Every record and tag in ``cmw`` with its label path from the root (depth first)."""
    if isinstance(cmw, CMWCollection):
        for label, item in cmw.items.items():
            for path, leaf in iter_leaves(item):
                yield (label, *path), leaf
    else:
        yield (), cmw
