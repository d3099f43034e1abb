"""Simulated Intel TDX: a generated test PKI and byte-exact quotes, for tests and the demo.

.. warning::
   NOT A REAL TEE. Quotes produced here are signed by a *test* root whose keys are derived from a
   public seed: anyone can forge them. A verifier accepts them only through its explicitly named
   "unsafe custom root" option, and this module warns (:class:`SimulatedTdxWarning`, a Python
   warning, printed on stderr unless filtered) the first time a process uses it, once per
   process; quote generation is logged at INFO (1st, 10th, 100th ... quote).

:class:`SimulatedTdxHierarchy` builds, deterministically from a seed (default
:data:`DEFAULT_SEED`), the same shape of PKI and collateral that Intel runs:

* test root CA (self-signed) -> "PCK Platform CA" -> PCK leaf carrying the SGX extension
  (1.2.840.113741.1.13.1: PPID, TCB with 16 component SVNs + PCESVN + CPUSVN, PCE-ID, FMSPC,
  SGX type, platform instance id, configuration); test root -> "TCB Signing" certificate;
* the root CRL and the PCK CRL; the TDX TCB info (id ``TDX``, version 3, with ``tdxModule`` and
  ``tdxModuleIdentities``) and the QE identity (id ``TD_QE``, version 2), each signed (raw
  ``r‖s``) over its exact JSON text by the TCB Signing key;
* the attestation key (AK) and a QE report whose REPORTDATA is ``SHA-256(AK‖auth data) ‖ 0*32``,
  signed by the PCK key.

:meth:`SimulatedTdxHierarchy.quote` returns v4 (TD report 1.0) or v5 (body type 2 or 3, TD report
1.0 or 1.5) quotes laid out as in Intel's TDX DCAP quote format (docs/tdx.md), with QE
certification data (type 6) nesting the PEM PCK chain (type 5). With the default inputs,
``dcap_qvl.verify_with_root_ca(quote, QuoteCollateralV3.from_json(collateral_json(now)),
root_ca_der, now)`` returns status ``UpToDate`` with no advisories.

:class:`SimulationKnobs` produces the bad cases. dcap-qvl 0.7.0 outcome with the test root
(``verify_with_root_ca``) and the collateral of the same knobs:

=========================== ==================================================================
knob                        dcap-qvl 0.7.0 outcome (``ValueError`` text contains ...)
=========================== ==================================================================
(none)                      status ``UpToDate``, advisory_ids ``[]``
``debug``                   ``Debug mode is enabled``
``other_mrtd``              status ``UpToDate`` (MRTD is relying-party policy, not DCAP)
``out_of_date``             status ``OutOfDate``, advisory_ids :data:`OUT_OF_DATE_ADVISORIES`
``revoked``                 ``CertRevoked`` (PCK leaf serial listed in the PCK CRL)
``expired``                 ``CrlExpired`` (every collateral window ends 1 day before ``now``)
``bad_quote_signature``     ``ISV enclave report signature is invalid`` (AK over the quote)
``bad_qe_report_signature`` ``Signature is invalid for qe_report in quote`` (PCK over QE report)
=========================== ==================================================================

With the Intel root (``dcap_qvl.verify``) every simulated quote fails with
``InvalidCrlSignatureForPublicKey`` (the test root CRL is not signed by Intel).

:data:`KNOB_OUTCOMES` holds the exact substrings the tests assert.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import struct
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attquic import profile
from attquic.errors import ConfigurationError
from attquic.logs import get_logger
from attquic.tdx import _sim_pki as pki

if TYPE_CHECKING:
    from attquic.batching import EvidenceBatcher
    from attquic.cmw import CMW, CMWRecord
    from attquic.keyschedule import Binding
    from attquic.tdx.collateral import Collateral
    from attquic.tdx.quote import TdxQuote

__all__ = [
    "BANNER",
    "DEFAULT_MEASUREMENTS",
    "DEFAULT_MRTD",
    "DEFAULT_RTMRS",
    "DEFAULT_SEED",
    "DEFAULT_TD_ATTRIBUTES",
    "INTEL_ROOT_REJECTION",
    "KNOB_OUTCOMES",
    "OTHER_MRTD",
    "OUT_OF_DATE_ADVISORIES",
    "REAL_TDX_QUOTE_LATENCY",
    "SIMULATED_FMSPC",
    "TD_ATTR_DEBUG",
    "TD_ATTR_SEPT_VE_DISABLE",
    "SimulatedCollateral",
    "SimulatedMeasurements",
    "SimulatedTdxAttester",
    "SimulatedTdxHierarchy",
    "SimulatedTdxWarning",
    "SimulationKnobs",
]

BANNER: Final = (
    "SIMULATED TDX: NOT A REAL TEE, quotes are signed by a test root "
    "(anyone can forge them; never trust this in production)"
)

#: Seed of the default hierarchy. Public on purpose: the simulated root is not a secret.
DEFAULT_SEED: Final = b"attquic simulated TDX hierarchy v1 (PUBLIC TEST KEYS, NOT A TEE)"

#: FMSPC of the simulated platform; chosen outside Intel's ranges so that no collateral cache
#: keyed by FMSPC can ever mix simulated and real collateral.
SIMULATED_FMSPC: Final = bytes.fromhex("FFFF5A000001")

TD_ATTR_DEBUG: Final = 1 << 0
TD_ATTR_SEPT_VE_DISABLE: Final = 1 << 28
#: TD attributes of a normal Linux TD: SEPT_VE_DISABLE only (dcap-qvl requires it).
DEFAULT_TD_ATTRIBUTES: Final = TD_ATTR_SEPT_VE_DISABLE


def _measurement(label: str) -> bytes:
    return hashlib.sha384(f"attquic simulated TDX: {label}".encode()).digest()


#: MRTD of the default simulated TD: ``SHA-384(b"attquic simulated TDX: MRTD")``.
DEFAULT_MRTD: Final = _measurement("MRTD")
#: RTMR0..3 of the default simulated TD: ``SHA-384(b"attquic simulated TDX: RTMR<i>")``.
DEFAULT_RTMRS: Final = tuple(_measurement(f"RTMR{i}") for i in range(4))
#: The MRTD the ``other_mrtd`` knob puts in the quote: ``SHA-384(b"... other MRTD")``.
OTHER_MRTD: Final = _measurement("other MRTD")
#: Advisory IDs reported for the ``out_of_date`` knob (fake IDs, not Intel's).
OUT_OF_DATE_ADVISORIES: Final = ("SIM-SA-00001", "SIM-SA-00002")

#: Exact dcap-qvl 0.7.0 outcome per knob: a status name, or a substring of the ValueError text.
KNOB_OUTCOMES: Final[dict[str, str]] = {
    "none": "status:UpToDate",
    "debug": "error:Debug mode is enabled",
    "other_mrtd": "status:UpToDate",
    "out_of_date": "status:OutOfDate",
    "revoked": "error:CertRevoked",
    "expired": "error:CrlExpired",
    "bad_quote_signature": "error:ISV enclave report signature is invalid",
    "bad_qe_report_signature": "error:Signature is invalid for qe_report in quote",
}
#: dcap-qvl 0.7.0 error text when a simulated quote is checked against the real Intel root.
INTEL_ROOT_REJECTION: Final = "InvalidCrlSignatureForPublicKey"

_QE_VENDOR_ID_INTEL = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
_TEE_TYPE_TDX = 0x81
_AK_TYPE_ECDSA_P256 = 2
_CERT_DATA_QE_REPORT = 6
_CERT_DATA_PCK_CHAIN = 5
_BODY_TYPE_TD10 = 2
_BODY_TYPE_TD15 = 3
_XFAM_DEFAULT = bytes.fromhex("e71a060000000000")

# Platform TCB: the PCK certifies these component SVNs; the TD's TEE_TCB_SVN is
# [module minor (ISVSVN), module major, TDX late microcode, 0...].
_PCK_COMPONENT_SVNS = (3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0)
_PCE_SVN = 13
_PCE_ID = b"\x00\x00"
_MODULE_MAJOR = 1
_MODULE_ISVSVN = 3
_TEE_TCB_SVN_UP_TO_DATE = bytes([_MODULE_ISVSVN, _MODULE_MAJOR, 3] + [0] * 13)
_TEE_TCB_SVN_OUT_OF_DATE = bytes([_MODULE_ISVSVN, _MODULE_MAJOR, 2] + [0] * 13)

# Quoting enclave: what the QE report says and the QE identity expects.
_QE_ATTRIBUTES = bytes.fromhex("11000000000000000000000000000000")
_QE_ISVPRODID = 2
_QE_ISVSVN = 4
_QE_AUTH_DATA = bytes(range(32))

_TCB_EVALUATION_DATA_NUMBER = 17
_TCB_DATE = "2025-01-15T00:00:00Z"
_OLD_TCB_DATE = "2024-03-13T00:00:00Z"

# Certificates are valid for the whole range tests and demos use (like Intel's root).
_CERT_NOT_BEFORE = datetime.datetime(2018, 1, 1, tzinfo=datetime.UTC)
_CERT_NOT_AFTER = datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)

_DAY = 86400
#: A normal collateral window: issued 1 day before ``now``, next update 29 days after.
_WINDOW_BEFORE = 1 * _DAY
_WINDOW_AFTER = 29 * _DAY
_COLLATERAL_CACHE_SIZE = 64


class SimulatedTdxWarning(UserWarning):
    """Simulated TDX is running: quotes are signed by a public test root, not by a real TEE.

    Emitted once per process (the first simulated object created). ``logging.captureWarnings``
    routes it into the ``py.warnings`` logger like any Python warning.
    """


_log = get_logger("attquic.tdx.simulated")
_warning_lock = threading.Lock()
_warned = False
_quote_count = 0


def _warn(what: str) -> None:
    """Warn that TDX is simulated, once per process (naming the first use)."""
    global _warned
    with _warning_lock:
        if _warned:
            return
        _warned = True
    # explicit location: one line on stderr ("attquic.tdx.simulated:0: SimulatedTdxWarning:
    # ..."), not whichever caller's source line happened to create the first object
    warnings.warn_explicit(
        f"{BANNER} [first use: {what}]", SimulatedTdxWarning, __name__, 0, module=__name__
    )


def _count_quote() -> None:
    """Log quote generation at the 1st, 10th, 100th, ... quote: visible, never a flood."""
    global _quote_count
    _quote_count += 1
    count = _quote_count
    if count == 10 ** (len(str(count)) - 1):
        _log.info("simulated_tdx.quote", quotes_generated=count)


@dataclass(frozen=True)
class SimulationKnobs:
    """Switches that turn a good simulated quote/collateral into a bad one.

    Quote-side knobs change :meth:`SimulatedTdxHierarchy.quote`; collateral-side knobs
    (``revoked``, ``expired``) change :meth:`SimulatedTdxHierarchy.collateral`. The dcap-qvl
    outcome of each is in the module docstring and :data:`KNOB_OUTCOMES`.
    """

    debug: bool = False
    """Set TD attribute DEBUG (bit 0)."""
    other_mrtd: bool = False
    """Report :data:`OTHER_MRTD` instead of the requested MRTD (a policy, not DCAP, failure)."""
    out_of_date: bool = False
    """Report a TEE_TCB_SVN below the top TCB level: status OutOfDate with advisories."""
    revoked: bool = False
    """List the PCK leaf's serial number in the PCK CRL."""
    expired: bool = False
    """Issue every collateral window so that it ends one day before ``now``."""
    bad_quote_signature: bool = False
    """Corrupt the attestation key's signature over the quote."""
    bad_qe_report_signature: bool = False
    """Corrupt the PCK key's signature over the QE report."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Names of every knob, in declaration order."""
        return tuple(cls.__dataclass_fields__)

    @classmethod
    def only(cls, name: str) -> SimulationKnobs:
        """Knobs with exactly ``name`` switched on."""
        if name not in cls.__dataclass_fields__:
            raise ConfigurationError(f"unknown simulation knob {name!r}")
        return cls(**{name: True})


_NO_KNOBS: Final = SimulationKnobs()


@dataclass(frozen=True)
class SimulatedMeasurements:
    """The measurement registers a simulated TD reports (48 bytes each)."""

    mrtd: bytes = DEFAULT_MRTD
    rtmrs: tuple[bytes, bytes, bytes, bytes] = (
        DEFAULT_RTMRS[0],
        DEFAULT_RTMRS[1],
        DEFAULT_RTMRS[2],
        DEFAULT_RTMRS[3],
    )
    mr_config_id: bytes = bytes(48)
    mr_owner: bytes = bytes(48)
    mr_owner_config: bytes = bytes(48)

    def __post_init__(self) -> None:
        named = [
            ("mrtd", self.mrtd),
            ("mr_config_id", self.mr_config_id),
            ("mr_owner", self.mr_owner),
            ("mr_owner_config", self.mr_owner_config),
        ]
        named += [(f"rtmr{i}", value) for i, value in enumerate(self.rtmrs)]
        if len(self.rtmrs) != 4:
            raise ConfigurationError("a TD has exactly four RTMRs")
        for name, value in named:
            if len(value) != 48:
                raise ConfigurationError(f"{name} must be 48 bytes, got {len(value)}")


#: The default measurement set (documented constants a demo policy can name).
DEFAULT_MEASUREMENTS: Final = SimulatedMeasurements()


def _rtmr_tuple(rtmrs: Sequence[bytes]) -> tuple[bytes, bytes, bytes, bytes]:
    if len(rtmrs) != 4:
        raise ConfigurationError(f"a TD has exactly four RTMRs, got {len(rtmrs)}")
    return (rtmrs[0], rtmrs[1], rtmrs[2], rtmrs[3])


def _iso(timestamp: int) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_text(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def _flip_last_bit(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


class SimulatedTdxHierarchy:
    """A deterministic test PKI plus the quoting enclave of one simulated TDX platform.

    Construction costs a few milliseconds (keys, five certificates, the QE report signature);
    use :meth:`default` for the process-wide shared instance. :meth:`quote` costs one ECDSA
    signature; :meth:`collateral` is cached per ``(now, knobs)``.
    """

    def __init__(self, seed: bytes = DEFAULT_SEED) -> None:
        _warn("test PKI created")
        self._seed = seed
        root_key = pki.derive_key(seed, "root")
        platform_key = pki.derive_key(seed, "pck-platform-ca")
        self._platform_key = platform_key
        pck_key = pki.derive_key(seed, "pck-leaf")
        tcb_key = pki.derive_key(seed, "tcb-signing")
        self._tcb_signing_key = tcb_key
        self._ak = pki.derive_key(seed, "attestation-key")
        self._root_key = root_key

        self._root = pki.build_ca_certificate(
            subject="attquic SIMULATED SGX Root CA",
            key=root_key,
            issuer=None,
            issuer_key=root_key,
            serial=pki.derive_serial(seed, "root"),
            not_before=_CERT_NOT_BEFORE,
            not_after=_CERT_NOT_AFTER,
            path_length=None,
        )
        self._platform_ca = pki.build_ca_certificate(
            subject="attquic SIMULATED SGX PCK Platform CA",
            key=platform_key,
            issuer=self._root,
            issuer_key=root_key,
            serial=pki.derive_serial(seed, "pck-platform-ca"),
            not_before=_CERT_NOT_BEFORE,
            not_after=_CERT_NOT_AFTER,
            path_length=0,
        )
        self._pck_tcb = pki.PckTcb(_PCK_COMPONENT_SVNS, _PCE_SVN)
        self._ppid = hashlib.sha256(seed + b"ppid").digest()[:16]
        sgx_extension = pki.encode_sgx_extension(
            ppid=self._ppid,
            tcb=self._pck_tcb,
            pce_id=_PCE_ID,
            fmspc=SIMULATED_FMSPC,
            sgx_type=1,  # Scalable
            platform_instance_id=hashlib.sha256(seed + b"platform-instance").digest()[:16],
        )
        self._pck_leaf = pki.build_leaf_certificate(
            subject="attquic SIMULATED SGX PCK Certificate",
            public_key=pck_key.public_key(),
            issuer=self._platform_ca,
            issuer_key=platform_key,
            serial=pki.derive_serial(seed, "pck-leaf"),
            not_before=_CERT_NOT_BEFORE,
            not_after=_CERT_NOT_AFTER,
            extra_extensions=[(pki.SGX_EXTENSION_OID, sgx_extension)],
        )
        self._tcb_signing = pki.build_leaf_certificate(
            subject="attquic SIMULATED SGX TCB Signing",
            public_key=tcb_key.public_key(),
            issuer=self._root,
            issuer_key=root_key,
            serial=pki.derive_serial(seed, "tcb-signing"),
            not_before=_CERT_NOT_BEFORE,
            not_after=_CERT_NOT_AFTER,
        )

        self._root_pem = self._root.public_bytes(serialization.Encoding.PEM)
        platform_pem = self._platform_ca.public_bytes(serialization.Encoding.PEM)
        leaf_pem = self._pck_leaf.public_bytes(serialization.Encoding.PEM)
        tcb_pem = self._tcb_signing.public_bytes(serialization.Encoding.PEM)
        self._pck_chain_pem = leaf_pem + platform_pem + self._root_pem
        self._pck_crl_issuer_chain = (platform_pem + self._root_pem).decode()
        self._signing_chain = (tcb_pem + self._root_pem).decode()

        self._qe_mrsigner = hashlib.sha256(seed + b"qe-mrsigner").digest()
        self._qe_mrenclave = hashlib.sha256(seed + b"qe-mrenclave").digest()
        self._mrseam = hashlib.sha384(seed + b"mrseam").digest()
        self._user_data = hashlib.sha256(seed + b"qe-id").digest()[:16] + bytes(4)
        self._ak_public = pki.raw_public_key(self._ak.public_key())
        qe_report = self._qe_report()
        qe_report_signature = pki.sign_raw(pck_key, qe_report)
        self._qe_cert_data = {
            False: self._qe_certification_data(qe_report, qe_report_signature),
            True: self._qe_certification_data(qe_report, _flip_last_bit(qe_report_signature)),
        }
        self._collateral_cache: dict[tuple[int, bool, bool], dict[str, str]] = {}
        self._cache_lock = threading.Lock()

    @classmethod
    def default(cls) -> SimulatedTdxHierarchy:
        """The process-wide hierarchy for :data:`DEFAULT_SEED` (built once, then shared)."""
        return _default_hierarchy()

    # --- public facts ------------------------------------------------------------------------

    @property
    def root_ca_der(self) -> bytes:
        """The test root certificate (DER): the trust anchor a verifier must be told about."""
        return self._root.public_bytes(serialization.Encoding.DER)

    @property
    def root_ca_pem(self) -> bytes:
        """The test root certificate (PEM)."""
        return self._root_pem

    @property
    def pck_certificate(self) -> x509.Certificate:
        """The PCK leaf certificate embedded in every quote."""
        return self._pck_leaf

    @property
    def pck_chain_pem(self) -> bytes:
        """The PEM chain (PCK leaf, Platform CA, root) embedded in every quote."""
        return self._pck_chain_pem

    @property
    def fmspc(self) -> bytes:
        """FMSPC of the simulated platform (:data:`SIMULATED_FMSPC`)."""
        return SIMULATED_FMSPC

    @property
    def ppid(self) -> bytes:
        """The PPID in the PCK certificate (16 bytes)."""
        return self._ppid

    @property
    def attestation_public_key(self) -> bytes:
        """The attestation key as carried in quotes (raw ``x‖y``, 64 bytes)."""
        return self._ak_public

    # --- quotes ------------------------------------------------------------------------------

    def quote(
        self,
        report_data: bytes,
        *,
        version: Literal[4, 5] = 4,
        v5_body_type: Literal[2, 3] = 3,
        knobs: SimulationKnobs = _NO_KNOBS,
        measurements: SimulatedMeasurements = DEFAULT_MEASUREMENTS,
        mrtd: bytes | None = None,
        rtmrs: Sequence[bytes] | None = None,
        td_attributes: int = DEFAULT_TD_ATTRIBUTES,
        xfam: bytes = _XFAM_DEFAULT,
    ) -> bytes:
        """A signed TDX quote carrying ``report_data`` (exactly 64 bytes).

        ``version`` 4 gives a TD report 1.0 body at offset 48; ``version`` 5 adds the body
        descriptor and a TD report 1.5 (``v5_body_type=3``, default) or 1.0 (``2``) body at 54.
        ``mrtd``/``rtmrs`` override ``measurements``. REPORTDATA lands at offset 568 (v4) or
        574 (v5).
        """
        if len(report_data) != 64:
            raise ConfigurationError(f"report_data must be 64 bytes, got {len(report_data)}")
        if version not in (4, 5):
            raise ConfigurationError(f"quote version must be 4 or 5, got {version!r}")
        if v5_body_type not in (_BODY_TYPE_TD10, _BODY_TYPE_TD15):
            raise ConfigurationError(f"v5 body type must be 2 or 3, got {v5_body_type!r}")
        if len(xfam) != 8:
            raise ConfigurationError("xfam must be 8 bytes")
        if not 0 <= td_attributes < 2**64:
            raise ConfigurationError("td_attributes must be a 64-bit unsigned integer")
        _warn("quote generated")
        _count_quote()

        chosen = SimulatedMeasurements(
            mrtd=OTHER_MRTD if knobs.other_mrtd else (measurements.mrtd if mrtd is None else mrtd),
            rtmrs=_rtmr_tuple(rtmrs) if rtmrs is not None else measurements.rtmrs,
            mr_config_id=measurements.mr_config_id,
            mr_owner=measurements.mr_owner,
            mr_owner_config=measurements.mr_owner_config,
        )
        if knobs.debug:
            td_attributes |= TD_ATTR_DEBUG
        tee_tcb_svn = _TEE_TCB_SVN_OUT_OF_DATE if knobs.out_of_date else _TEE_TCB_SVN_UP_TO_DATE
        body = self._td_report_body(chosen, report_data, td_attributes, xfam, tee_tcb_svn)
        header = struct.pack(
            "<HHIHH16s20s",
            version,
            _AK_TYPE_ECDSA_P256,
            _TEE_TYPE_TDX,
            0,
            0,
            _QE_VENDOR_ID_INTEL,
            self._user_data,
        )
        if version == 5:
            if v5_body_type == _BODY_TYPE_TD15:
                # TEE_TCB_SVN2 (the TCB the TD started under) and MRSERVICETD (no service TD).
                body += tee_tcb_svn + bytes(48)
            signed = header + struct.pack("<HI", v5_body_type, len(body)) + body
        else:
            signed = header + body

        signature = pki.sign_raw(self._ak, signed)
        if knobs.bad_quote_signature:
            signature = _flip_last_bit(signature)
        cert_data = self._qe_cert_data[knobs.bad_qe_report_signature]
        signature_data = (
            signature
            + self._ak_public
            + struct.pack("<HI", _CERT_DATA_QE_REPORT, len(cert_data))
            + cert_data
        )
        return signed + struct.pack("<I", len(signature_data)) + signature_data

    def _td_report_body(
        self,
        measurements: SimulatedMeasurements,
        report_data: bytes,
        td_attributes: int,
        xfam: bytes,
        tee_tcb_svn: bytes,
    ) -> bytes:
        """TD report 1.0 body (584 bytes)."""
        body = b"".join(
            [
                tee_tcb_svn,
                self._mrseam,
                bytes(48),  # MRSIGNERSEAM: Intel-signed module
                bytes(8),  # SEAMATTRIBUTES
                td_attributes.to_bytes(8, "little"),
                xfam,
                measurements.mrtd,
                measurements.mr_config_id,
                measurements.mr_owner,
                measurements.mr_owner_config,
                *measurements.rtmrs,
                report_data,
            ]
        )
        assert len(body) == 584
        return body

    def _qe_report(self) -> bytes:
        """The TD QE's SGX report body (384 bytes), REPORTDATA bound to the AK."""
        binding = hashlib.sha256(self._ak_public + _QE_AUTH_DATA).digest() + bytes(32)
        report = b"".join(
            [
                self._pck_tcb.cpu_svn,
                bytes(4),  # MISCSELECT
                bytes(28),
                _QE_ATTRIBUTES,
                self._qe_mrenclave,
                bytes(32),
                self._qe_mrsigner,
                bytes(96),
                struct.pack("<HH", _QE_ISVPRODID, _QE_ISVSVN),
                bytes(60),
                binding,
            ]
        )
        assert len(report) == 384
        return report

    def _qe_certification_data(self, qe_report: bytes, qe_report_signature: bytes) -> bytes:
        return (
            qe_report
            + qe_report_signature
            + struct.pack("<H", len(_QE_AUTH_DATA))
            + _QE_AUTH_DATA
            + struct.pack("<HI", _CERT_DATA_PCK_CHAIN, len(self._pck_chain_pem))
            + self._pck_chain_pem
        )

    # --- collateral --------------------------------------------------------------------------

    @staticmethod
    def collateral_window(now: float, *, knobs: SimulationKnobs = _NO_KNOBS) -> tuple[int, int]:
        """``(issue, next_update)`` Unix times of every collateral item produced for ``now``.

        Normally ``now - 1 day .. now + 29 days``; with ``knobs.expired``
        ``now - 31 days .. now - 1 day``.
        """
        at = int(now)
        if knobs.expired:
            return at - _WINDOW_AFTER - 2 * _WINDOW_BEFORE, at - _WINDOW_BEFORE
        return at - _WINDOW_BEFORE, at + _WINDOW_AFTER

    def collateral(self, now: float, *, knobs: SimulationKnobs = _NO_KNOBS) -> dict[str, str]:
        """dcap-qvl collateral (``QuoteCollateralV3.to_json`` keys) valid around ``now``.

        Binary values are hex; ``tcb_info``/``qe_identity`` are the exact signed JSON texts.
        """
        key = (int(now), knobs.revoked, knobs.expired)
        with self._cache_lock:
            cached = self._collateral_cache.get(key)
        if cached is None:
            cached = self._build_collateral(now, knobs)
            with self._cache_lock:
                if len(self._collateral_cache) >= _COLLATERAL_CACHE_SIZE:
                    self._collateral_cache.clear()
                self._collateral_cache[key] = cached
        return dict(cached)

    def collateral_json(self, now: float, *, knobs: SimulationKnobs = _NO_KNOBS) -> str:
        """:meth:`collateral` as the JSON text ``QuoteCollateralV3.from_json`` reads."""
        return json.dumps(self.collateral(now, knobs=knobs), indent=1)

    def _build_collateral(self, now: float, knobs: SimulationKnobs) -> dict[str, str]:
        issue, next_update = self.collateral_window(now, knobs=knobs)
        this_update = datetime.datetime.fromtimestamp(issue, tz=datetime.UTC)
        next_moment = datetime.datetime.fromtimestamp(next_update, tz=datetime.UTC)
        root_crl = pki.build_crl(
            issuer=self._root,
            issuer_key=self._root_key,
            this_update=this_update,
            next_update=next_moment,
        )
        pck_crl = pki.build_crl(
            issuer=self._platform_ca,
            issuer_key=self._platform_key,
            this_update=this_update,
            next_update=next_moment,
            revoked_serials=[self._pck_leaf.serial_number] if knobs.revoked else [],
        )
        tcb_info = _json_text(self._tcb_info(issue, next_update))
        qe_identity = _json_text(self._qe_identity(issue, next_update))
        return {
            "pck_crl_issuer_chain": self._pck_crl_issuer_chain,
            "root_ca_crl": root_crl.hex(),
            "pck_crl": pck_crl.hex(),
            "tcb_info_issuer_chain": self._signing_chain,
            "tcb_info": tcb_info,
            "tcb_info_signature": pki.sign_raw(self._tcb_signing_key, tcb_info.encode()).hex(),
            "qe_identity_issuer_chain": self._signing_chain,
            "qe_identity": qe_identity,
            "qe_identity_signature": pki.sign_raw(
                self._tcb_signing_key, qe_identity.encode()
            ).hex(),
        }

    def _tcb_info(self, issue: int, next_update: int) -> dict[str, Any]:
        def components(svns: Sequence[int]) -> list[dict[str, int]]:
            return [{"svn": svn} for svn in svns]

        up_to_date_sgx = list(_PCK_COMPONENT_SVNS)
        older_sgx = [max(0, svn - 1) if i < 5 else svn for i, svn in enumerate(up_to_date_sgx)]
        module_identity = {
            "mrsigner": "00" * 48,
            "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF",
        }
        return {
            "id": "TDX",
            "version": 3,
            "issueDate": _iso(issue),
            "nextUpdate": _iso(next_update),
            "fmspc": SIMULATED_FMSPC.hex().upper(),
            "pceId": _PCE_ID.hex().upper(),
            "tcbType": 0,
            "tcbEvaluationDataNumber": _TCB_EVALUATION_DATA_NUMBER,
            "tdxModule": module_identity,
            "tdxModuleIdentities": [
                {
                    "id": f"TDX_{_MODULE_MAJOR:02X}",
                    **module_identity,
                    "tcbLevels": [
                        {
                            "tcb": {"isvsvn": _MODULE_ISVSVN},
                            "tcbDate": _TCB_DATE,
                            "tcbStatus": "UpToDate",
                        },
                        {
                            "tcb": {"isvsvn": _MODULE_ISVSVN - 1},
                            "tcbDate": _OLD_TCB_DATE,
                            "tcbStatus": "OutOfDate",
                            "advisoryIDs": list(OUT_OF_DATE_ADVISORIES),
                        },
                    ],
                }
            ],
            "tcbLevels": [
                {
                    "tcb": {
                        "sgxtcbcomponents": components(up_to_date_sgx),
                        "pcesvn": _PCE_SVN,
                        "tdxtcbcomponents": components(_TEE_TCB_SVN_UP_TO_DATE),
                    },
                    "tcbDate": _TCB_DATE,
                    "tcbStatus": "UpToDate",
                },
                {
                    "tcb": {
                        "sgxtcbcomponents": components(older_sgx),
                        "pcesvn": _PCE_SVN,
                        "tdxtcbcomponents": components(_TEE_TCB_SVN_OUT_OF_DATE),
                    },
                    "tcbDate": _OLD_TCB_DATE,
                    "tcbStatus": "OutOfDate",
                    "advisoryIDs": list(OUT_OF_DATE_ADVISORIES),
                },
            ],
        }

    def _qe_identity(self, issue: int, next_update: int) -> dict[str, Any]:
        return {
            "id": "TD_QE",
            "version": 2,
            "issueDate": _iso(issue),
            "nextUpdate": _iso(next_update),
            "tcbEvaluationDataNumber": _TCB_EVALUATION_DATA_NUMBER,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": _QE_ATTRIBUTES.hex().upper(),
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": self._qe_mrsigner.hex().upper(),
            "isvprodid": _QE_ISVPRODID,
            "tcbLevels": [
                {"tcb": {"isvsvn": _QE_ISVSVN}, "tcbDate": _TCB_DATE, "tcbStatus": "UpToDate"}
            ],
        }


#: Seconds a real TDX quote takes: Flashbots' attested-tls-benchmarks measured 25.5 quotes/s
#: (mean 39 ms) on a GCP TDX host at concurrency 1, and 25.2 quotes/s at 64 (docs/tdx.md).
REAL_TDX_QUOTE_LATENCY: Final = 0.039


class _QuotingService:
    """The process's simulated quote generation service: one quote at a time, FIFO.

    A real TDX host's quoting service serves one request at a time whatever the number of
    callers. Each quote reserves the next free slot of ``latency`` seconds and completes at its
    end; a caller that gives up (cancelled) still used its slot, as on a real host.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free_at = 0.0

    def reserve(self, latency: float) -> float:
        """The ``time.monotonic()`` at which a quote requested now completes."""
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + latency
            return self._free_at


_QUOTING_SERVICE = _QuotingService()


@functools.cache
def _default_hierarchy() -> SimulatedTdxHierarchy:
    return SimulatedTdxHierarchy(DEFAULT_SEED)


class SimulatedTdxAttester:
    """An :class:`~attquic.attestation.Attester` that produces simulated TDX quotes.

    NOT A REAL TEE: see the module docstring (the first simulated object of a process emits
    the one :class:`SimulatedTdxWarning`; each attester logs its settings at INFO).

    ``quote_latency`` (seconds, default 0) is the cost model of a real host: each quote takes
    that long and the process makes one quote at a time, like a TDX host's quoting service
    (:data:`REAL_TDX_QUOTE_LATENCY` is the measured 39 ms). ``batching`` (default on) lets
    :meth:`attest_batched` cover every request queued during a quote with the next one, at
    most ``max_batch_size`` (default 64) per quote.
    """

    def __init__(
        self,
        hierarchy: SimulatedTdxHierarchy | None = None,
        *,
        version: Literal[4, 5] = 4,
        knobs: SimulationKnobs = _NO_KNOBS,
        mrtd: bytes | None = None,
        rtmrs: Sequence[bytes] | None = None,
        measurements: SimulatedMeasurements = DEFAULT_MEASUREMENTS,
        td_attributes: int = DEFAULT_TD_ATTRIBUTES,
        quote_latency: float = 0.0,
        batching: bool = True,
        max_batch_size: int = profile.DEFAULT_MAX_BATCH_SIZE,
    ) -> None:
        from attquic.batching import EvidenceBatcher

        if version not in (4, 5):
            raise ConfigurationError(f"quote version must be 4 or 5, got {version!r}")
        if not 0 <= quote_latency <= 60:
            raise ConfigurationError(f"quote_latency must be 0..60 seconds, got {quote_latency!r}")
        self._quote_latency = float(quote_latency)
        self._batcher = (
            EvidenceBatcher(self.attest, max_batch_size=max_batch_size) if batching else None
        )
        self._measurements = SimulatedMeasurements(
            mrtd=measurements.mrtd if mrtd is None else mrtd,
            rtmrs=measurements.rtmrs if rtmrs is None else _rtmr_tuple(rtmrs),
            mr_config_id=measurements.mr_config_id,
            mr_owner=measurements.mr_owner,
            mr_owner_config=measurements.mr_owner_config,
        )
        _warn("attester created")
        self._hierarchy = hierarchy if hierarchy is not None else SimulatedTdxHierarchy.default()
        self._version: Literal[4, 5] = version
        self._knobs = knobs
        self._td_attributes = td_attributes
        _log.info(
            "simulated_tdx.attester",
            quote_version=version,
            mrtd=self._measurements.mrtd.hex(),
            knobs=[name for name in SimulationKnobs.names() if getattr(knobs, name)],
        )

    @property
    def hierarchy(self) -> SimulatedTdxHierarchy:
        """The simulated platform and PKI behind this attester."""
        return self._hierarchy

    @property
    def knobs(self) -> SimulationKnobs:
        """The knobs applied to every quote and to :meth:`collateral_json`."""
        return self._knobs

    @property
    def measurements(self) -> SimulatedMeasurements:
        """The MRTD/RTMRs/... this attester's quotes report (before the ``other_mrtd`` knob)."""
        return self._measurements

    @property
    def root_ca_der(self) -> bytes:
        """The test root (DER) to give the verifier's explicit unsafe-root option."""
        return self._hierarchy.root_ca_der

    @property
    def quote_latency(self) -> float:
        """Seconds each quote takes, one quote at a time per process (0: instant)."""
        return self._quote_latency

    @property
    def batcher(self) -> EvidenceBatcher | None:
        """The batcher behind :meth:`attest_batched` (None when batching is off)."""
        return self._batcher

    def get_quote(self, report_data: bytes) -> bytes:
        """A simulated quote whose REPORTDATA is ``report_data`` (exactly 64 bytes).

        With a ``quote_latency``, blocks until this quote's turn at the process's quoting
        service is over (call it from a worker thread, or use :meth:`attest`).
        """
        if self._quote_latency:
            time.sleep(max(0.0, _QUOTING_SERVICE.reserve(self._quote_latency) - time.monotonic()))
        return self._make_quote(report_data)

    def _make_quote(self, report_data: bytes) -> bytes:
        return self._hierarchy.quote(
            report_data,
            version=self._version,
            knobs=self._knobs,
            measurements=self._measurements,
            td_attributes=self._td_attributes,
        )

    async def attest(self, binding: Binding) -> CMWRecord:
        """The quote for ``binding.report_data`` in a CMW record (TDX media type, Evidence)."""
        from attquic.cmw import CMWRecord

        if self._quote_latency:
            done = _QUOTING_SERVICE.reserve(self._quote_latency)
            await anyio.sleep(max(0.0, done - time.monotonic()))
        quote = self._make_quote(binding.report_data)
        return CMWRecord(profile.TDX_QUOTE_MEDIA_TYPE, quote, profile.IND_EVIDENCE)

    async def attest_batched(self, binding: Binding) -> CMW:
        """For a peer that accepts batched evidence: one quote per batch of requests (see
        :class:`~attquic.batching.EvidenceBatcher`), or :meth:`attest` when batching is off."""
        if self._batcher is None:
            return await self.attest(binding)
        return await self._batcher.attest(binding)

    def collateral(self, now: float) -> dict[str, str]:
        """Collateral for the verifier, valid around ``now`` (honours this attester's knobs)."""
        return self._hierarchy.collateral(now, knobs=self._knobs)

    def collateral_json(self, now: float) -> str:
        """:meth:`collateral` as dcap-qvl JSON text."""
        return self._hierarchy.collateral_json(now, knobs=self._knobs)


class SimulatedCollateral:
    """A :class:`~attquic.tdx.collateral.CollateralSource` serving the simulated platform's
    collateral, valid around the ``now`` it is asked for.

    NOT REAL COLLATERAL: it is signed by the simulated test root, so it only verifies through a
    verifier's explicit unsafe-root option (see :class:`~attquic.tdx.verifier.TdxVerifier`).
    Collateral is generated once per hour of ``now`` and reused, as a PCCS cache would be.
    """

    def __init__(
        self, hierarchy: SimulatedTdxHierarchy | None = None, *, knobs: SimulationKnobs = _NO_KNOBS
    ) -> None:
        _warn("simulated collateral source created")
        self._hierarchy = hierarchy if hierarchy is not None else SimulatedTdxHierarchy.default()
        self._knobs = knobs
        self._by_hour: dict[int, Collateral] = {}

    async def get(self, quote: TdxQuote, *, now: float) -> Collateral:
        hour = int(now) - int(now) % 3600
        collateral = self._by_hour.get(hour)
        if collateral is None:
            from attquic.tdx.collateral import Collateral

            text = self._hierarchy.collateral_json(hour, knobs=self._knobs)
            collateral = self._by_hour[hour] = Collateral.from_json(text)
        return collateral
