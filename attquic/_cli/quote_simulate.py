"""``attquic quote simulate``: write a SIMULATED TDX quote, its collateral and the test root.

The output directory receives ``quote.bin``, ``collateral.json`` (dcap-qvl format, valid around
``--at``), ``test-root-ca.der`` and ``test-root-ca.pem``. Verify with ``attquic quote verify
DIR/quote.bin --collateral DIR/collateral.json --at TIME --unsafe-root-ca DIR/test-root-ca.der``.
Knob flags produce the bad cases (see :mod:`attquic.tdx.simulated`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from attquic._cli._input import parse_time
from attquic.errors import ConfigurationError
from attquic.tdx.simulated import SimulatedTdxHierarchy, SimulationKnobs

__all__ = ["add_parser", "simulate_handler"]

EXIT_OK = 0
EXIT_UNUSABLE = 2

#: Flag name -> SimulationKnobs field.
_KNOB_FLAGS = {
    "debug": "set the DEBUG TD attribute (dcap-qvl: Debug mode is enabled)",
    "other_mrtd": "report another MRTD (accepted by DCAP, rejected by an MRTD policy)",
    "out_of_date": "TEE TCB below the top level (status OutOfDate with advisories)",
    "revoked": "list the PCK certificate in the PCK CRL (dcap-qvl: CertRevoked)",
    "expired": "collateral window ends one day before --at (dcap-qvl: CrlExpired)",
    "bad_quote_signature": "corrupt the attestation key's quote signature",
    "bad_qe_report_signature": "corrupt the PCK signature over the QE report",
}


def add_parser(quote_subparsers: Any) -> None:
    """Register ``simulate`` in the ``attquic quote`` subcommand group."""
    parser = quote_subparsers.add_parser(
        "simulate",
        help="write a SIMULATED TDX quote + collateral + test root (not a real TEE)",
        description=__doc__,
    )
    parser.add_argument("--out-dir", required=True, type=Path, metavar="DIR")
    parser.add_argument("--version", type=int, choices=(4, 5), default=4, help="quote version")
    parser.add_argument("--report-data", metavar="HEX", help="64-byte REPORTDATA (default zeros)")
    parser.add_argument(
        "--at",
        type=parse_time,
        metavar="TIME",
        help="time the collateral must be valid at: now (default), Unix seconds or ISO-8601",
    )
    parser.add_argument("--mrtd", metavar="HEX", help="48-byte MRTD (default: the simulated one)")
    for knob, help_text in _KNOB_FLAGS.items():
        parser.add_argument(f"--{knob.replace('_', '-')}", action="store_true", help=help_text)
    parser.add_argument(
        "--bad-signature",
        action="store_true",
        help="alias of --bad-quote-signature",
    )
    parser.set_defaults(handler=simulate_handler)


def _hex_argument(name: str, value: str | None, length: int) -> bytes | None:
    if value is None:
        return None
    text = value.strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError(f"{name} is not valid hex") from None
    if len(data) != length:
        raise ConfigurationError(f"{name} must be {length} bytes, got {len(data)}")
    return data


def simulate_handler(args: argparse.Namespace) -> int:
    """Write the files; 0 on success, 2 on unusable arguments or an unwritable directory."""
    try:
        report_data = _hex_argument("--report-data", args.report_data, 64) or bytes(64)
        mrtd = _hex_argument("--mrtd", args.mrtd, 48)
    except ConfigurationError as exc:
        print(f"attquic quote simulate: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    knob_values = {knob: bool(getattr(args, knob)) for knob in _KNOB_FLAGS}
    knob_values["bad_quote_signature"] |= bool(args.bad_signature)
    knobs = SimulationKnobs(**knob_values)
    at = int(time.time() if args.at is None else args.at)

    hierarchy = SimulatedTdxHierarchy.default()  # logs the simulation warning (stderr)
    quote = hierarchy.quote(report_data, version=args.version, knobs=knobs, mrtd=mrtd)
    collateral = hierarchy.collateral_json(at, knobs=knobs)

    out_dir: Path = args.out_dir
    files = {
        "quote.bin": quote,
        "collateral.json": collateral.encode(),
        "test-root-ca.der": hierarchy.root_ca_der,
        "test-root-ca.pem": hierarchy.root_ca_pem,
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (out_dir / name).write_bytes(content)
    except OSError as exc:
        print(f"attquic quote simulate: cannot write {out_dir}: {exc.strerror}", file=sys.stderr)
        return EXIT_UNUSABLE

    issue, next_update = SimulatedTdxHierarchy.collateral_window(at, knobs=knobs)
    enabled = [knob for knob, on in knob_values.items() if on]
    print(f"wrote SIMULATED TDX v{args.version} quote ({len(quote)} bytes) to {out_dir}:")
    for name in files:
        print(f"  {out_dir / name}")
    print(f"knobs: {', '.join(enabled) or 'none'}")
    print(f"collateral valid {issue} .. {next_update} (Unix time)")
    print(
        f"verify: attquic quote verify {out_dir / 'quote.bin'} --collateral "
        f"{out_dir / 'collateral.json'} --at {at} --unsafe-root-ca {out_dir / 'test-root-ca.der'}"
    )
    return EXIT_OK
