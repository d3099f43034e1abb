"""``attquic verifier serve``: run the Veraison-compatible verifier service (passport model).

Prints ``attquic verifier listening on <URL>`` on stdout once it accepts connections and runs
until SIGINT/SIGTERM (exit 0). Unusable input (unreadable key, policy, collateral or root
certificate; address in use) exits 2 with a one-line reason on stderr. ``--port 0`` picks a
free port (the printed URL has the real one).

Collateral: ``--collateral FILE`` (dcap-qvl JSON, fixed), ``--pccs-url URL`` (a PCCS), or
neither for the Intel PCS. ``--unsafe-root-ca FILE`` (DER or PEM) replaces the pinned Intel SGX
root, for simulated TDX only. Without ``--key`` an ephemeral P-256 key is generated; relying
parties then take it from the discovery endpoint. EARs follow draft-ietf-rats-ear-03;
``--ear-profile veraison`` issues Veraison's profile instead.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attquic.ear.claims import IETF_PROFILE, VERAISON_PROFILE
from attquic.ear.keys import generate_signing_key, load_private_key
from attquic.errors import AttquicError
from attquic.tdx.collateral import CollateralSource, FileCollateral, PccsCollateral
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.verifier import DEFAULT_POLICY
from attquic.verifier_service import (
    TdxEvidenceAppraiser,
    VerifierService,
    VerifierServiceConfig,
)

__all__ = ["build_config", "main", "register"]

EXIT_OK = 0
EXIT_UNUSABLE = 2

_EAR_PROFILES = {"03": IETF_PROFILE, "veraison": VERAISON_PROFILE}


class UnusableInput(Exception):
    """An option cannot be used; the message is the one-line reason."""


def register(subparsers: Any) -> None:
    """Add the ``verifier`` group with its ``serve`` command."""
    parser = subparsers.add_parser("verifier", help="EAR verifier service (passport model)")
    sub = parser.add_subparsers(dest="verifier_command", required=True)
    serve = sub.add_parser("serve", help="run the Veraison-compatible verification API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="TCP port (0: any free port)")
    serve.add_argument("--policy", help="TDX appraisal policy (.toml, or .json)")
    source = serve.add_mutually_exclusive_group()
    source.add_argument("--collateral", help="dcap-qvl collateral JSON file")
    source.add_argument("--pccs-url", help="PCCS base URL to fetch collateral from")
    serve.add_argument("--key", help="EAR signing key: PEM or JWK file, EC P-256 private")
    serve.add_argument(
        "--unsafe-root-ca",
        metavar="FILE",
        help="trust this root CA (DER/PEM) instead of Intel's: SIMULATED TDX ONLY",
    )
    serve.add_argument("--session-ttl", type=float, default=150.0, help="session lifetime (s)")
    serve.add_argument("--ear-validity", type=float, default=300.0, help="EAR exp - iat (s)")
    serve.add_argument(
        "--max-evidence-size", type=int, default=64 * 1024, help="largest evidence body (bytes)"
    )
    serve.add_argument(
        "--ear-profile",
        choices=sorted(_EAR_PROFILES),
        default="03",
        help="EAR profile: draft-ietf-rats-ear-03 (default) or Veraison's",
    )
    serve.set_defaults(handler=serve_handler)


def _root_ca_der(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UnusableInput(f"cannot read {path}: {exc.strerror}") from None
    try:
        if b"-----BEGIN" in data:
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError:
        raise UnusableInput(f"{path} is not an X.509 certificate (DER or PEM)") from None
    return cert.public_bytes(serialization.Encoding.DER)


def build_config(args: argparse.Namespace) -> VerifierServiceConfig:
    """The service configuration the options describe (raises UnusableInput)."""
    try:
        policy = AppraisalPolicy.from_file(args.policy) if args.policy else DEFAULT_POLICY
        collateral: CollateralSource
        if args.collateral:
            collateral = FileCollateral(args.collateral)
        elif args.pccs_url:
            collateral = PccsCollateral(args.pccs_url)
        else:
            collateral = PccsCollateral.intel_pcs()
        if args.key:
            key = load_private_key(args.key)
        else:
            key = generate_signing_key()
            print("attquic verifier: ephemeral EAR signing key (see discovery)", file=sys.stderr)
        root = _root_ca_der(args.unsafe_root_ca) if args.unsafe_root_ca else None
        if root is not None:
            print("attquic verifier: UNSAFE root CA in use (simulated TDX)", file=sys.stderr)
        appraiser = TdxEvidenceAppraiser(collateral, policy, unsafe_root_ca_der=root)
        return VerifierServiceConfig(
            signing_key=key,
            appraiser=appraiser,
            session_ttl=args.session_ttl,
            ear_validity=args.ear_validity,
            max_evidence_size=args.max_evidence_size,
            ear_profile=_EAR_PROFILES[args.ear_profile],
        )
    except (AttquicError, ValueError) as exc:
        raise UnusableInput(str(exc)) from None


async def _serve(config: VerifierServiceConfig, host: str, port: int) -> None:
    service = VerifierService(config)
    try:
        url = await service.start(host, port)
    except OSError as exc:
        await service.close()
        raise UnusableInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    print(f"attquic verifier listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await service.close()


def serve_handler(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
        asyncio.run(_serve(config, args.host, args.port))
    except UnusableInput as exc:
        print(f"attquic verifier: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m attquic._cli.verifier serve ...`` (the same as ``attquic verifier serve``)."""
    parser = argparse.ArgumentParser(prog="attquic")
    register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(["verifier", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
