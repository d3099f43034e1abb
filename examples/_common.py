"""Flags and builders shared by the echo example pair."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import structlog

from attquic.attestation import Attester, Verifier
from attquic.tdx.collateral import CollateralSource, FileCollateral, PccsCollateral
from attquic.tdx.configfs import ConfigfsTsmAttester
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.simulated import SimulatedCollateral, SimulatedTdxAttester, SimulatedTdxHierarchy
from attquic.tdx.verifier import TdxVerifier

ALPN = "attquic-echo"
HERE = Path(__file__).resolve().parent


def configure_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def add_attester_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("evidence (this side attests)")
    group.add_argument(
        "--attester",
        choices=("simulated", "configfs"),
        default="simulated",
        help="simulated TDX (default; NOT a TEE) or the Linux configfs-tsm interface",
    )
    group.add_argument(
        "--configfs-root",
        default="/sys/kernel/config/tsm/report",
        help="configfs-tsm report directory (with --attester configfs)",
    )
    group.add_argument("--quote-version", type=int, choices=(4, 5), default=4)


def add_verifier_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("verification (this side verifies the peer)")
    group.add_argument("--policy", type=Path, help="appraisal policy (TOML or JSON)")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--collateral", type=Path, help="DCAP collateral JSON file")
    source.add_argument("--pccs-url", help="PCCS or Intel PCS base URL for collateral")
    source.add_argument(
        "--trust-simulated",
        action="store_true",
        help="trust the SIMULATED TDX test root and its collateral (the default when no "
        "collateral source is given)",
    )
    group.add_argument("--verbose", "-v", action="store_true")


def build_attester(args: argparse.Namespace) -> Attester:
    if args.attester == "configfs":
        return ConfigfsTsmAttester(root=args.configfs_root)
    return SimulatedTdxAttester(version=args.quote_version)


def build_verifier(args: argparse.Namespace) -> Verifier:
    """A DCAP verifier from the flags; without a collateral source, the simulated TDX's."""
    source: CollateralSource
    if args.collateral is not None or args.pccs_url is not None:
        policy = AppraisalPolicy.from_file(args.policy) if args.policy else AppraisalPolicy()
        if args.collateral is not None:
            source = FileCollateral(args.collateral)
        else:
            source = PccsCollateral(args.pccs_url)
        return TdxVerifier(source, policy)
    # Simulated TDX: its deterministic test root and collateral, trusted only through the
    # loudly named unsafe-root option; the default policy names the simulated measurements.
    policy = AppraisalPolicy.from_file(args.policy or HERE / "simulated-policy.toml")
    hierarchy = SimulatedTdxHierarchy.default()
    source = SimulatedCollateral(hierarchy)
    return TdxVerifier(source, policy, unsafe_root_ca_der=hierarchy.root_ca_der)


def describe(result: object) -> list[str]:
    """Human-readable lines about a verified attestation result."""
    lines = [f"attestation: {type(result).__name__}"]
    for name in ("tcb_status", "advisory_ids", "mrtd", "rtmrs", "fmspc", "verified_at"):
        value = getattr(result, name, None)
        if value is None:
            continue
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple | list) and value and isinstance(value[0], bytes):
            value = [v.hex() for v in value]
        lines.append(f"  {name}: {value}")
    return lines
