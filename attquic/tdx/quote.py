"""Typed model of Intel TDX quotes, versions 4 and 5 (TD report 1.0 and 1.5).

:func:`parse_quote` turns quote bytes into frozen dataclasses. It checks structure only (sizes,
versions, types, lengths); signatures, certificates and collateral are checked by
:mod:`attquic.tdx.verifier`. Every malformed input raises
:class:`~attquic.errors.QuoteFormatError` with a message naming what is wrong; nothing else
escapes. Bytes after the end of the signature data (zero padding from the quote generator,
or anything else) are tolerated and excluded from :attr:`TdxQuote.raw`, as DCAP does.

Layout (little-endian integers; see docs/tdx.md):

* header (48 bytes): version, attestation key type (2 = ECDSA-P256), TEE type (0x81 = TDX),
  2 reserved u16, QE vendor id (16), user data (20);
* v5 only: body descriptor ``u16 body_type, u32 body_size`` (2 = TD report 1.0, 3 = TD 1.5);
* TD report body (584 bytes, or 648 for TD report 1.5);
* ``u32`` signature-data length, then: quote signature (64), attestation key (64),
  certification data type 6 (QE report certification data): QE report (384), its
  signature (64), ``u16``-prefixed QE auth data, and nested certification data type 5
  (PEM PCK certificate chain).
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, overload

from cryptography import x509

from attquic.errors import QuoteFormatError
from attquic.tdx._frozen import build

__all__ = [
    "ATTESTATION_KEY_TYPE_ECDSA_P256",
    "INTEL_QE_VENDOR_ID",
    "TEE_TYPE_TDX",
    "QeReport",
    "QuoteHeader",
    "QuoteSignatureData",
    "TdAttributes",
    "TdReportBody",
    "TdReportType",
    "TdxQuote",
    "parse_quote",
]

HEADER_SIZE = 48
BODY_DESCRIPTOR_SIZE = 6
TD_REPORT10_SIZE = 584
TD_REPORT15_SIZE = 648
QE_REPORT_SIZE = 384
SIGNATURE_SIZE = 64
ATTESTATION_KEY_SIZE = 64

TEE_TYPE_TDX = 0x00000081
"""Header TEE type of a TDX quote (0 would be SGX)."""
ATTESTATION_KEY_TYPE_ECDSA_P256 = 2
"""Header attestation key type: ECDSA-256 with P-256 (the only one DCAP verifiers accept)."""
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
"""QE vendor id of the Intel Quoting Enclave."""

CERT_DATA_QE_REPORT = 6
CERT_DATA_PCK_CHAIN = 5

_SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"
_FMSPC_OID = "1.2.840.113741.1.13.1.4"
_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_END = b"-----END CERTIFICATE-----"


class TdReportType(enum.IntEnum):
    """Body type of the TD report in the quote (the v5 body descriptor's values)."""

    TD_REPORT_10 = 2
    TD_REPORT_15 = 3


class _LEReader:
    """Little-endian cursor over a quote; every overrun raises QuoteFormatError."""

    __slots__ = ("_data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self.pos = pos

    def read(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self._data):
            raise QuoteFormatError(
                f"quote truncated in {what}: need {n} bytes at offset {self.pos}, "
                f"have {len(self._data) - self.pos}"
            )
        out = self._data[self.pos : end]
        self.pos = end
        return out

    @property
    def at_end(self) -> bool:
        return self.pos == len(self._data)

    def u16(self, what: str) -> int:
        return int.from_bytes(self.read(2, what), "little")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.read(4, what), "little")


@dataclass(frozen=True)
class TdAttributes:
    """The decoded TDATTRIBUTES field (u64, little-endian in the quote)."""

    raw: int
    """The whole 64-bit value."""

    @property
    def debug(self) -> bool:
        """Bit 0: the TD runs in debug mode (its memory and state are not confidential)."""
        return bool(self.raw & 1)

    @property
    def debug_bits(self) -> int:
        """Bits 0-7, all "TD under debug" bits; must be 0 for a production TD."""
        return self.raw & 0xFF

    @property
    def sept_ve_disable(self) -> bool:
        """Bit 28: EPT violations are not converted to #VE (expected by Linux guests)."""
        return bool(self.raw >> 28 & 1)

    @property
    def pks(self) -> bool:
        """Bit 30: supervisor protection keys enabled."""
        return bool(self.raw >> 30 & 1)

    @property
    def kl(self) -> bool:
        """Bit 31: key locker enabled."""
        return bool(self.raw >> 31 & 1)

    @property
    def perfmon(self) -> bool:
        """Bit 63: performance monitoring enabled."""
        return bool(self.raw >> 63 & 1)

    def to_bytes(self) -> bytes:
        """The 8 bytes as they appear in the quote."""
        return self.raw.to_bytes(8, "little")

    def to_dict(self) -> dict[str, object]:
        return {
            "raw": self.to_bytes().hex(),
            "debug": self.debug,
            "sept_ve_disable": self.sept_ve_disable,
            "pks": self.pks,
            "kl": self.kl,
            "perfmon": self.perfmon,
        }


@dataclass(frozen=True)
class QuoteHeader:
    """The 48-byte quote header."""

    version: int
    attestation_key_type: int
    tee_type: int
    reserved: bytes
    """Bytes 8-11 (QE_SVN/PCE_SVN in SGX quotes; zero in TDX quotes)."""
    qe_vendor_id: bytes
    user_data: bytes


@dataclass(frozen=True)
class TdReportBody:
    """The TD report body (TD report 1.0, or 1.5 with the two extra fields)."""

    report_type: TdReportType
    tee_tcb_svn: bytes
    mrseam: bytes
    mrsignerseam: bytes
    seam_attributes: bytes
    td_attributes: TdAttributes
    xfam: bytes
    mrtd: bytes
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    tee_tcb_svn2: bytes | None = None
    """TD report 1.5 only."""
    mrservicetd: bytes | None = None
    """TD report 1.5 only."""


_F = TypeVar("_F")


class _QeField(Generic[_F]):
    """A QE report field, decoded from the report's bytes on first read (see :class:`QeReport`)."""

    def __init__(self, index: int, convert: Callable[[Any], _F]) -> None:
        self._index = index
        self._convert = convert

    @overload
    def __get__(self, report: None, owner: type[QeReport]) -> _QeField[_F]: ...
    @overload
    def __get__(self, report: QeReport, owner: type[QeReport]) -> _F: ...
    def __get__(self, report: QeReport | None, owner: type[QeReport]) -> _QeField[_F] | _F:
        if report is None:
            return self  # read on the class (introspection, docs)
        return self._convert(report._fields[self._index])


@dataclass(frozen=True)
class QeReport:
    """The Quoting Enclave's SGX report body (384 bytes), signed by the PCK key.

    Only :attr:`raw` is stored; the fields are decoded from it on first access (dcap-qvl
    checks the QE report itself, so verification never needs them decoded here)."""

    raw: bytes
    """The 384 bytes as they appear in the quote."""

    @functools.cached_property
    def _fields(self) -> tuple[Any, ...]:
        return _QE_REPORT_LAYOUT.unpack(self.raw)

    cpu_svn = _QeField(0, bytes)
    misc_select = _QeField(1, int)
    attributes = _QeField(2, bytes)
    mrenclave = _QeField(3, bytes)
    mrsigner = _QeField(4, bytes)
    isv_prod_id = _QeField(5, int)
    isv_svn = _QeField(6, int)
    report_data = _QeField(7, bytes)


@dataclass(frozen=True)
class QuoteSignatureData:
    """The ECDSA signature data after the body."""

    signature: bytes
    """Raw r‖s by the attestation key over :attr:`TdxQuote.signed_bytes`."""
    attestation_key: bytes
    """Raw x‖y of the P-256 attestation key."""
    qe_report: QeReport
    qe_report_signature: bytes
    """Raw r‖s by the PCK leaf key over the QE report."""
    qe_auth_data: bytes
    pck_cert_chain_pem: bytes
    """The PEM chain (PCK leaf, PCK platform/processor CA, root), without trailing NULs."""


@dataclass(frozen=True)
class TdxQuote:
    """A structurally valid TDX quote. Nothing here is verified yet."""

    header: QuoteHeader
    body: TdReportBody
    signature_data: QuoteSignatureData
    signed_bytes: bytes
    """Header (‖ v5 body descriptor) ‖ body: what the attestation key signs."""
    raw: bytes
    """The quote without trailing padding; what is handed to the DCAP verifier."""

    @property
    def version(self) -> int:
        return self.header.version

    @property
    def mrtd(self) -> bytes:
        return self.body.mrtd

    @property
    def rtmrs(self) -> tuple[bytes, bytes, bytes, bytes]:
        return self.body.rtmrs

    @property
    def report_data(self) -> bytes:
        return self.body.report_data

    @property
    def td_attributes(self) -> TdAttributes:
        return self.body.td_attributes

    @functools.cached_property
    def pck_chain_der(self) -> tuple[bytes, ...]:
        """The PCK certificate chain as DER certificates, leaf first.

        Raises QuoteFormatError when the PEM is malformed.
        """
        return _split_pem_chain(self.signature_data.pck_cert_chain_pem)

    @functools.cached_property
    def pck_leaf(self) -> x509.Certificate:
        """The PCK leaf certificate (parsed, not verified; raises QuoteFormatError)."""
        try:
            return x509.load_der_x509_certificate(self.pck_chain_der[0])
        except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
            raise QuoteFormatError(f"PCK leaf certificate is not valid DER: {exc}") from None

    def chain_ends_with(self, root_der: bytes) -> bool:
        """Whether the last certificate of the PCK chain is exactly ``root_der``.

        Compares base64 text (whitespace removed) with the canonical encoding of
        ``root_der``, which avoids decoding the whole chain on the verification hot path.
        """
        pem = self.signature_data.pck_cert_chain_pem
        root_der = bytes(root_der)
        block, block_nl = _canonical_pem(root_der)
        if pem.endswith(block_nl) or pem.endswith(block):
            # The chain ends with the root as PEM writers print it (nothing to slice or
            # re-encode): that block is the last one; it must not be the only one.
            last = len(pem) - (len(block_nl) if pem.endswith(block_nl) else len(block))
            return pem.find(_PEM_BEGIN) < last
        begin = pem.rfind(_PEM_BEGIN)
        end = pem.find(_PEM_END, begin)
        if begin < 0 or end < 0 or pem.find(_PEM_BEGIN) == begin:
            return False  # no PEM block, or the chain is only one certificate long
        return _pem_body_is(pem[begin + len(_PEM_BEGIN) : end], root_der)

    @functools.cached_property
    def fmspc(self) -> bytes:
        """The 6-byte FMSPC from the PCK leaf's SGX extension (raises QuoteFormatError)."""
        return _fmspc_from_leaf(self.pck_chain_der[0])

    @functools.cached_property
    def pck_issuer(self) -> str:
        """The common name of the PCK leaf's issuer, whoever it is (parsing, not verification)."""
        return _issuer_common_name(self.pck_chain_der[0])

    @functools.cached_property
    def ca(self) -> str:
        """``"platform"`` or ``"processor"``: which Intel PCK CA issued the leaf (its issuer CN).

        Raises QuoteFormatError for any other issuer (e.g. the simulated TDX's test CA).
        """
        common_name = self.pck_issuer
        if common_name == "Intel SGX PCK Platform CA":
            return "platform"
        if common_name == "Intel SGX PCK Processor CA":
            return "processor"
        raise QuoteFormatError(f"PCK leaf issued by an unknown CA: {common_name!r}")


def parse_quote(data: bytes) -> TdxQuote:
    """Parse a TDX quote v4 or v5; trailing bytes are tolerated and dropped.

    Raises :class:`~attquic.errors.QuoteFormatError` on anything truncated or inconsistent.
    """
    data = bytes(data)
    quote = _parse_well_formed(data)
    if quote is not None:
        return quote
    return _parse_checked(data)


def _parse_checked(data: bytes) -> TdxQuote:
    """The field-by-field parser: the reference behaviour, and every error message."""
    reader = _LEReader(data)
    header = _parse_header(reader)
    body_start = HEADER_SIZE
    if header.version == 5:
        body_type = reader.u16("body descriptor")
        body_size = reader.u32("body descriptor")
        report_type = _v5_report_type(body_type, body_size)
        body_start += BODY_DESCRIPTOR_SIZE
    else:
        report_type = TdReportType.TD_REPORT_10
    body = _parse_td_report(reader, report_type)
    signed_end = reader.pos
    sig_data_len = reader.u32("signature data length")
    sig_data_end = reader.pos + sig_data_len
    if sig_data_end > len(data):
        raise QuoteFormatError(
            f"signature data length {sig_data_len} exceeds the {len(data) - reader.pos} "
            "bytes after it"
        )
    signature_data = _parse_signature_data(_LEReader(data[:sig_data_end], reader.pos))
    return TdxQuote(
        header=header,
        body=body,
        signature_data=signature_data,
        signed_bytes=data[:signed_end],
        raw=data[:sig_data_end],
    )


_HEADER_LAYOUT: Final = struct.Struct("<HHI4s16s20s")
_BODY_DESCRIPTOR_LAYOUT: Final = struct.Struct("<HI")
_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_CERT_DATA_HEADER: Final = struct.Struct("<HI")
_V5_REPORT_TYPES: Final = {
    int(TdReportType.TD_REPORT_10): (TdReportType.TD_REPORT_10, TD_REPORT10_SIZE),
    int(TdReportType.TD_REPORT_15): (TdReportType.TD_REPORT_15, TD_REPORT15_SIZE),
}
"""v5 body type -> (report type, body size), for the hot path (no enum construction)."""


_PlatformParts = tuple[bytes, "QeReport", bytes, bytes, bytes]
"""Attestation key, QE report, its signature, QE auth data, PCK chain PEM."""
_last_header: tuple[bytes, QuoteHeader] | None = None
"""The header bytes of the last quote parsed on the hot path, and their QuoteHeader."""
_last_platform_tail: tuple[bytes, _PlatformParts] | None = None
"""The bytes after the quote signature (attestation key .. PCK chain) of the last quote parsed
on the hot path, and what was parsed from them. Every quote of one platform repeats these
~4 KB; a quote whose bytes there are equal reuses the parts (immutable) instead of copying them
again. One entry (~4 KB) per process; a quote of another platform replaces it."""


def _parse_well_formed(data: bytes) -> TdxQuote | None:
    """The verification hot path: the same quote :func:`_parse_checked` returns, with whole
    structures unpacked at once, or ``None`` as soon as anything is unusual (too short, a
    wrong version, type or length...), and :func:`_parse_checked` then raises the precise
    error. It accepts exactly what :func:`_parse_checked` accepts (tests compare the two).

    The frozen objects are filled by :func:`~attquic.tdx._frozen.build` (their generated
    ``__init__`` was most of this function's time); tests check they equal the constructors'.
    """
    size = len(data)
    if size < HEADER_SIZE:
        return None
    version, key_type, tee_type, reserved, qe_vendor_id, user_data = _HEADER_LAYOUT.unpack_from(
        data
    )
    if (
        version not in (4, 5)
        or key_type != ATTESTATION_KEY_TYPE_ECDSA_P256
        or tee_type != TEE_TYPE_TDX
    ):
        return None
    pos = HEADER_SIZE
    report_type = TdReportType.TD_REPORT_10
    if version == 5:
        if size < pos + BODY_DESCRIPTOR_SIZE:
            return None
        body_type, body_size = _BODY_DESCRIPTOR_LAYOUT.unpack_from(data, pos)
        known = _V5_REPORT_TYPES.get(body_type)
        if known is None or known[1] != body_size:
            return None
        report_type = known[0]
        pos += BODY_DESCRIPTOR_SIZE
    is_15 = report_type is TdReportType.TD_REPORT_15
    body_end = pos + (TD_REPORT15_SIZE if is_15 else TD_REPORT10_SIZE)
    if size < body_end + 4:
        return None
    (sig_data_len,) = _U32.unpack_from(data, body_end)
    start = body_end + 4
    end = start + sig_data_len
    outer_start = start + SIGNATURE_SIZE + ATTESTATION_KEY_SIZE + 6
    if end > size or outer_start > end:
        return None
    outer_type, outer_size = _CERT_DATA_HEADER.unpack_from(data, outer_start - 6)
    qe_start = outer_start
    auth_start = qe_start + QE_REPORT_SIZE + SIGNATURE_SIZE + 2
    if outer_type != CERT_DATA_QE_REPORT or outer_start + outer_size != end or auth_start > end:
        return None
    (auth_size,) = _U16.unpack_from(data, auth_start - 2)
    chain_start = auth_start + auth_size + 6
    if chain_start > end:
        return None
    inner_type, inner_size = _CERT_DATA_HEADER.unpack_from(data, chain_start - 6)
    if inner_type != CERT_DATA_PCK_CHAIN or chain_start + inner_size != end:
        return None
    extra = _TD_REPORT15_EXTRA.unpack_from(data, pos + TD_REPORT10_SIZE) if is_15 else _NO_EXTRA
    body = _td_report(report_type, _TD_REPORT10_LAYOUT.unpack_from(data, pos), extra)
    global _last_header, _last_platform_tail
    last_header = _last_header
    if last_header is not None and data.startswith(last_header[0]):
        header = last_header[1]
    else:
        header = build(
            QuoteHeader,
            {
                "version": version,
                "attestation_key_type": key_type,
                "tee_type": tee_type,
                "reserved": reserved,
                "qe_vendor_id": qe_vendor_id,
                "user_data": user_data,
            },
        )
        _last_header = (data[:HEADER_SIZE], header)
    tail_start = start + SIGNATURE_SIZE
    last_tail = _last_platform_tail
    if (
        last_tail is not None
        and end - tail_start == len(last_tail[0])
        and data.startswith(last_tail[0], tail_start)
    ):
        platform = last_tail[1]
    else:
        platform = (
            data[tail_start : outer_start - 6],
            build(QeReport, {"raw": data[qe_start : qe_start + QE_REPORT_SIZE]}),
            data[qe_start + QE_REPORT_SIZE : auth_start - 2],
            data[auth_start : auth_start + auth_size],
            data[chain_start:end].rstrip(b"\x00"),
        )
        _last_platform_tail = (data[tail_start:end], platform)
    attestation_key, qe_report, qe_report_signature, qe_auth_data, pck_cert_chain_pem = platform
    signature_data = build(
        QuoteSignatureData,
        {
            "signature": data[start:tail_start],
            "attestation_key": attestation_key,
            "qe_report": qe_report,
            "qe_report_signature": qe_report_signature,
            "qe_auth_data": qe_auth_data,
            "pck_cert_chain_pem": pck_cert_chain_pem,
        },
    )
    return build(
        TdxQuote,
        {
            "header": header,
            "body": body,
            "signature_data": signature_data,
            "signed_bytes": data[:body_end],
            "raw": data[:end],
        },
    )


def _parse_header(reader: _LEReader) -> QuoteHeader:
    version = reader.u16("header")
    if version not in (4, 5):
        raise QuoteFormatError(f"unsupported quote version {version} (expected 4 or 5)")
    key_type = reader.u16("header")
    if key_type != ATTESTATION_KEY_TYPE_ECDSA_P256:
        raise QuoteFormatError(
            f"unsupported attestation key type {key_type} (expected 2, ECDSA-P256)"
        )
    tee_type = reader.u32("header")
    if tee_type != TEE_TYPE_TDX:
        raise QuoteFormatError(f"TEE type {tee_type:#x} is not TDX (0x81)")
    return QuoteHeader(
        version=version,
        attestation_key_type=key_type,
        tee_type=tee_type,
        reserved=reader.read(4, "header"),
        qe_vendor_id=reader.read(16, "header"),
        user_data=reader.read(20, "header"),
    )


def _v5_report_type(body_type: int, body_size: int) -> TdReportType:
    expected = {
        TdReportType.TD_REPORT_10: TD_REPORT10_SIZE,
        TdReportType.TD_REPORT_15: TD_REPORT15_SIZE,
    }
    if body_type not in expected:
        raise QuoteFormatError(
            f"unsupported v5 body type {body_type} (expected 2 = TD report 1.0 or 3 = TD 1.5)"
        )
    report_type = TdReportType(body_type)
    if body_size != expected[report_type]:
        raise QuoteFormatError(
            f"v5 body size {body_size} does not match body type {body_type} "
            f"(expected {expected[report_type]})"
        )
    return report_type


_TD_REPORT10_LAYOUT: Final = struct.Struct("<16s48s48s8sQ8s48s48s48s48s48s48s48s48s64s")
_TD_REPORT15_EXTRA: Final = struct.Struct("<16s48s")


_NO_EXTRA: Final[tuple[None, None]] = (None, None)


def _parse_td_report(reader: _LEReader, report_type: TdReportType) -> TdReportBody:
    fields = _TD_REPORT10_LAYOUT.unpack(reader.read(TD_REPORT10_SIZE, "TD report body"))
    extra: tuple[bytes | None, bytes | None] = _NO_EXTRA
    if report_type is TdReportType.TD_REPORT_15:
        extra = _TD_REPORT15_EXTRA.unpack(
            reader.read(TD_REPORT15_SIZE - TD_REPORT10_SIZE, "TD report 1.5 body")
        )
    return _td_report(report_type, fields, extra)


def _td_report(
    report_type: TdReportType,
    fields: tuple[Any, ...],
    extra: tuple[bytes | None, bytes | None],
) -> TdReportBody:
    """The body from its unpacked fields (``_TD_REPORT10_LAYOUT``, then the 1.5 extension or
    ``_NO_EXTRA``); both parsers build it here, without the dataclass ``__init__``."""
    (
        tee_tcb_svn,
        mrseam,
        mrsignerseam,
        seam_attributes,
        td_attributes,
        xfam,
        mrtd,
        mrconfigid,
        mrowner,
        mrownerconfig,
        rtmr0,
        rtmr1,
        rtmr2,
        rtmr3,
        report_data,
    ) = fields
    tee_tcb_svn2, mrservicetd = extra
    return build(
        TdReportBody,
        {
            "report_type": report_type,
            "tee_tcb_svn": tee_tcb_svn,
            "mrseam": mrseam,
            "mrsignerseam": mrsignerseam,
            "seam_attributes": seam_attributes,
            "td_attributes": build(TdAttributes, {"raw": td_attributes}),
            "xfam": xfam,
            "mrtd": mrtd,
            "mrconfigid": mrconfigid,
            "mrowner": mrowner,
            "mrownerconfig": mrownerconfig,
            "rtmrs": (rtmr0, rtmr1, rtmr2, rtmr3),
            "report_data": report_data,
            "tee_tcb_svn2": tee_tcb_svn2,
            "mrservicetd": mrservicetd,
        },
    )


def _parse_signature_data(reader: _LEReader) -> QuoteSignatureData:
    signature = reader.read(SIGNATURE_SIZE, "quote signature")
    attestation_key = reader.read(ATTESTATION_KEY_SIZE, "attestation key")
    outer_type = reader.u16("certification data header")
    if outer_type != CERT_DATA_QE_REPORT:
        raise QuoteFormatError(
            f"certification data type {outer_type} is not 6 (QE report certification data)"
        )
    outer_size = reader.u32("certification data header")
    outer = _LEReader(reader.read(outer_size, "QE report certification data"))
    qe_report = _parse_qe_report(outer.read(QE_REPORT_SIZE, "QE report"))
    qe_report_signature = outer.read(SIGNATURE_SIZE, "QE report signature")
    qe_auth_data = outer.read(outer.u16("QE auth data length"), "QE auth data")
    inner_type = outer.u16("PCK certification data header")
    if inner_type != CERT_DATA_PCK_CHAIN:
        raise QuoteFormatError(
            f"nested certification data type {inner_type} is not 5 (PCK certificate chain)"
        )
    inner_size = outer.u32("PCK certification data header")
    chain = outer.read(inner_size, "PCK certificate chain")
    if outer.pos != outer_size:
        raise QuoteFormatError(
            f"{outer_size - outer.pos} unexpected bytes after the PCK certificate chain"
        )
    if not reader.at_end:
        raise QuoteFormatError("signature data length does not match its contents")
    return QuoteSignatureData(
        signature=signature,
        attestation_key=attestation_key,
        qe_report=qe_report,
        qe_report_signature=qe_report_signature,
        qe_auth_data=qe_auth_data,
        pck_cert_chain_pem=chain.rstrip(b"\x00"),
    )


# cpu_svn, misc_select, (28 reserved), attributes, mrenclave, (32 reserved), mrsigner,
# (96 reserved), isv_prod_id, isv_svn, (60 reserved), report_data: 384 bytes.
_QE_REPORT_LAYOUT: Final = struct.Struct("<16sI28x16s32s32x32s96xHH60x64s")


def _parse_qe_report(raw: bytes) -> QeReport:
    return QeReport(raw=raw)


# --- PCK certificate chain ------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _pem_body_is(pem_body: bytes, root_der: bytes) -> bool:
    """Whether a PEM block's base64 text (any whitespace) encodes exactly ``root_der``.

    Memoised: every quote of a platform repeats the same root block, and the answer depends
    on the two byte strings only (at most 16 pairs are kept)."""
    body = b"".join(pem_body.split())
    return hmac.compare_digest(body, base64.b64encode(root_der))


@functools.lru_cache(maxsize=16)
def _canonical_pem(der: bytes) -> tuple[bytes, bytes]:
    """``der`` as a PEM block with 64-column base64 lines and ``\n`` line ends (what OpenSSL,
    ``cryptography`` and Intel's PCK chains print), up to and including the END line, and the
    same with a final ``\n``. A chain ending with either ends with a block encoding ``der``
    (no BEGIN or END line can hide inside the block); any other layout is compared by
    :func:`_pem_body_is`."""
    text = base64.b64encode(der)
    lines = b"".join(text[i : i + 64] + b"\n" for i in range(0, len(text), 64))
    block = _PEM_BEGIN + b"\n" + lines + _PEM_END
    return block, block + b"\n"


def _split_pem_chain(pem: bytes) -> tuple[bytes, ...]:
    """DER certificates from a concatenated PEM chain (strict base64)."""
    ders: list[bytes] = []
    pos = 0
    while True:
        begin = pem.find(_PEM_BEGIN, pos)
        if begin < 0:
            break
        end = pem.find(_PEM_END, begin)
        if end < 0:
            raise QuoteFormatError("PCK certificate chain: PEM block without END line")
        body = b"".join(pem[begin + len(_PEM_BEGIN) : end].split())
        try:
            ders.append(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise QuoteFormatError(f"PCK certificate chain: bad base64 ({exc})") from None
        pos = end + len(_PEM_END)
    if not ders:
        raise QuoteFormatError("PCK certificate chain contains no PEM certificate")
    return tuple(ders)


def _tbs_items(cert_der: bytes) -> list[tuple[int, bytes]]:
    """The fields of a certificate's tbsCertificate (structure only, nothing verified)."""
    outer = _der_items(cert_der)
    if len(outer) != 1 or outer[0][0] != 0x30:
        raise QuoteFormatError("PCK leaf certificate is not a DER SEQUENCE")
    parts = _der_items(outer[0][1])
    if not parts or parts[0][0] != 0x30:
        raise QuoteFormatError("PCK leaf certificate has no tbsCertificate")
    return _der_items(parts[0][1])


def _fmspc_from_leaf(cert_der: bytes) -> bytes:
    extensions = [content for tag, content in _tbs_items(cert_der) if tag == 0xA3]
    if len(extensions) != 1:
        raise QuoteFormatError("PCK leaf certificate has no extensions")
    sgx_oid = _encode_oid(_SGX_EXTENSION_OID)
    for wrapper_tag, wrapper in _der_items(extensions[0]):
        if wrapper_tag != 0x30:
            raise QuoteFormatError("PCK leaf extensions are not a DER SEQUENCE")
        for tag, extension in _der_items(wrapper):
            if tag != 0x30:
                raise QuoteFormatError("PCK leaf extension is not a DER SEQUENCE")
            parts = _der_items(extension)
            if parts and parts[0] == (0x06, sgx_oid) and parts[-1][0] == 0x04:
                fmspc = _find_sgx_value(parts[-1][1], _encode_oid(_FMSPC_OID))
                if fmspc is None or len(fmspc) != 6:
                    raise QuoteFormatError("PCK leaf SGX extension has no 6-byte FMSPC")
                return fmspc
    raise QuoteFormatError("PCK leaf certificate has no SGX extension")


def _issuer_common_name(cert_der: bytes) -> str:
    tbs = _tbs_items(cert_der)
    if tbs and tbs[0][0] == 0xA0:  # explicit version
        tbs = tbs[1:]
    if len(tbs) < 3 or tbs[2][0] != 0x30:
        raise QuoteFormatError("PCK leaf certificate has no issuer name")
    cn_oid = _encode_oid("2.5.4.3")
    for rdn_tag, rdn in _der_items(tbs[2][1]):
        if rdn_tag != 0x31:
            raise QuoteFormatError("PCK leaf issuer name is malformed")
        for _, attribute in _der_items(rdn):
            parts = _der_items(attribute)
            if len(parts) == 2 and parts[0] == (0x06, cn_oid):
                try:
                    return parts[1][1].decode("utf-8")
                except UnicodeDecodeError:
                    raise QuoteFormatError("PCK leaf issuer CN is not UTF-8") from None
    return ""


def _encode_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def _der_items(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) TLVs directly inside ``data`` (definite lengths only)."""
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise QuoteFormatError("SGX extension: truncated DER")
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            n = length & 0x7F
            if n == 0 or n > 4 or pos + n > len(data):
                raise QuoteFormatError("SGX extension: bad DER length")
            length = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        if pos + length > len(data):
            raise QuoteFormatError("SGX extension: truncated DER")
        items.append((tag, data[pos : pos + length]))
        pos += length
    return items


def _find_sgx_value(extension_der: bytes, oid_content: bytes) -> bytes | None:
    """The content of the value paired with ``oid_content`` in the SGX extension's SEQUENCE."""
    top = _der_items(extension_der)
    if len(top) != 1 or top[0][0] != 0x30:
        raise QuoteFormatError("SGX extension is not a DER SEQUENCE")
    for tag, entry in _der_items(top[0][1]):
        if tag != 0x30:
            continue
        pair = _der_items(entry)
        if len(pair) == 2 and pair[0] == (0x06, oid_content):
            return pair[1][1]
    return None
