"""``attquic quote show|verify|simulate``: inspect and verify Intel TDX quotes.

``show QUOTE [--json]`` prints the parsed fields of any well-formed quote, including who issued
its PCK chain (``pck_issuer``; ``ca`` is Intel's platform or processor CA, or none): showing is
parsing, not verification, so a simulated quote shows too.

``verify QUOTE --collateral FILE --at TIME`` runs full DCAP verification and the appraisal
policy; exit 0 accepted, 1 rejected, 2 unusable input (unreadable files, a malformed quote, bad
collateral or policy). QUOTE may be binary or hex text (with or without ``0x``); TIME is
``now``, Unix seconds or ISO-8601.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from attquic._cli._input import NotHexError, parse_time, read_file, unhex
from attquic.errors import CollateralError, ConfigurationError, QuoteFormatError
from attquic.tdx.collateral import Collateral
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.quote import TdxQuote, parse_quote
from attquic.tdx.verifier import DEFAULT_POLICY, check_quote

__all__ = ["add_show_verify", "quote_to_dict", "read_quote_file", "register"]

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_UNUSABLE = 2


class UnusableInput(Exception):
    """An input file cannot be used; the message is the one-line reason."""


def register(subparsers: Any) -> None:
    """Add the ``quote`` group (show, verify, and simulate from attquic._cli.quote_simulate)."""
    quote_simulate = importlib.import_module("attquic._cli.quote_simulate")  # the attester side
    parser = subparsers.add_parser("quote", help="inspect and verify Intel TDX quotes")
    quote_sub = parser.add_subparsers(dest="quote_command", required=True)
    add_show_verify(quote_sub)
    quote_simulate.add_parser(quote_sub)


def add_show_verify(quote_sub: Any) -> None:
    """Add ``show`` and ``verify`` to the ``quote`` subcommand group."""
    show = quote_sub.add_parser("show", help="print the parsed fields of a quote")
    show.add_argument("quote", help="quote file (binary or hex text)")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=show_handler)

    verify = quote_sub.add_parser("verify", help="verify a quote (DCAP + policy)")
    verify.add_argument("quote", help="quote file (binary or hex text)")
    verify.add_argument("--collateral", required=True, help="dcap-qvl collateral JSON file")
    verify.add_argument(
        "--at",
        required=True,
        type=parse_time,
        metavar="TIME",
        help="verification time: now, Unix seconds or ISO-8601 (UTC unless it names a zone)",
    )
    verify.add_argument("--policy", help="appraisal policy (.toml, or .json)")
    verify.add_argument("--report-data", metavar="HEX", help="expected 64-byte REPORTDATA")
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.add_argument(
        "--unsafe-root-ca",
        metavar="FILE",
        help="UNSAFE: trust this root CA (DER or PEM) instead of Intel's; simulated TDX only",
    )
    verify.set_defaults(handler=verify_handler)


def read_quote_file(path: str) -> bytes:
    """Quote bytes from a binary file or a hex text file (``0x`` prefix optional)."""
    try:
        return unhex(read_file(path))
    except OSError as exc:
        raise UnusableInput(f"cannot read quote file {path}: {exc.strerror}") from None
    except NotHexError:
        raise UnusableInput(f"quote file {path} looks like hex but is not valid hex") from None


def quote_to_dict(quote: TdxQuote) -> dict[str, Any]:
    """The parsed fields as JSON-ready data (hex for bytes)."""
    header, body, sig = quote.header, quote.body, quote.signature_data
    out: dict[str, Any] = {
        "version": header.version,
        "attestation_key_type": header.attestation_key_type,
        "tee_type": header.tee_type,
        "qe_vendor_id": header.qe_vendor_id.hex(),
        "user_data": header.user_data.hex(),
        "report_type": body.report_type.name,
        "tee_tcb_svn": body.tee_tcb_svn.hex(),
        "mrseam": body.mrseam.hex(),
        "mrsignerseam": body.mrsignerseam.hex(),
        "seam_attributes": body.seam_attributes.hex(),
        "td_attributes": body.td_attributes.to_dict(),
        "xfam": body.xfam.hex(),
        "mrtd": body.mrtd.hex(),
        "mrconfigid": body.mrconfigid.hex(),
        "mrowner": body.mrowner.hex(),
        "mrownerconfig": body.mrownerconfig.hex(),
        "rtmrs": [r.hex() for r in body.rtmrs],
        "report_data": body.report_data.hex(),
    }
    if body.tee_tcb_svn2 is not None and body.mrservicetd is not None:
        out["tee_tcb_svn2"] = body.tee_tcb_svn2.hex()
        out["mrservicetd"] = body.mrservicetd.hex()
    out["qe_report"] = {
        "mrenclave": sig.qe_report.mrenclave.hex(),
        "mrsigner": sig.qe_report.mrsigner.hex(),
        "isv_prod_id": sig.qe_report.isv_prod_id,
        "isv_svn": sig.qe_report.isv_svn,
    }
    out["attestation_key"] = sig.attestation_key.hex()
    out["pck_chain_certificates"] = len(quote.pck_chain_der)
    out["fmspc"] = quote.fmspc.hex().upper()
    # who issued the PCK chain is shown, not judged: `verify` decides whether it is trusted
    out["pck_issuer"] = quote.pck_issuer
    out["ca"] = _intel_pck_ca(quote)
    out["quote_length"] = len(quote.raw)
    return out


def _intel_pck_ca(quote: TdxQuote) -> str | None:
    """``"platform"`` / ``"processor"`` for Intel's PCK CAs, ``None`` for any other issuer."""
    try:
        return quote.ca
    except QuoteFormatError:
        return None


def show_handler(args: argparse.Namespace) -> int:
    try:
        quote = parse_quote(read_quote_file(args.quote))
        fields = quote_to_dict(quote)
    except (UnusableInput, QuoteFormatError) as exc:
        return _unusable(exc)
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        for key, value in fields.items():
            if isinstance(value, list):
                for index, item in enumerate(value):
                    print(f"{key}[{index}]: {item}")
            elif isinstance(value, dict):
                print(f"{key}: " + ", ".join(f"{k}={v}" for k, v in value.items()))
            elif key == "ca" and value is None:
                print("ca: none of Intel's PCK CAs (see pck_issuer; `quote verify` judges trust)")
            else:
                print(f"{key}: {value}")
    return EXIT_OK


def verify_handler(args: argparse.Namespace) -> int:
    try:
        raw = read_quote_file(args.quote)
        quote = parse_quote(raw)
        collateral = Collateral.from_file(args.collateral)
        policy = AppraisalPolicy.from_file(args.policy) if args.policy else DEFAULT_POLICY
        report_data = _report_data(args.report_data)
        root = _read_root(args.unsafe_root_ca) if args.unsafe_root_ca else None
    except (UnusableInput, QuoteFormatError, CollateralError, ConfigurationError) as exc:
        return _unusable(exc)
    if root is not None:
        print("WARNING: verifying against a NON-INTEL root CA (--unsafe-root-ca)", file=sys.stderr)
    verdict = check_quote(
        quote,
        collateral,
        now=args.at,
        policy=policy,
        expected_report_data=report_data,
        unsafe_root_ca_der=root,
    )
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2))
    elif verdict.accepted:
        print(f"accepted: TCB status {verdict.tcb_status}")
    else:
        print("rejected:")
        for reason in verdict.reasons:
            print(f"  - {reason}")
    return EXIT_OK if verdict.accepted else EXIT_REJECTED


def _report_data(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        value = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise UnusableInput("--report-data is not hex") from None
    if len(value) != 64:
        raise UnusableInput(f"--report-data has {len(value)} bytes, expected 64")
    return value


def _read_root(path: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UnusableInput(f"cannot read root CA file {path}: {exc.strerror}") from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        return x509.load_der_x509_certificate(data).public_bytes(Encoding.DER)
    except ValueError:
        raise UnusableInput(f"root CA file {path} is not a DER or PEM certificate") from None


def _unusable(exc: Exception) -> int:
    print(f"attquic quote: {exc}", file=sys.stderr)
    return EXIT_UNUSABLE
