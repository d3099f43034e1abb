"""Flags and builders shared by the echo example pair.

Two attestation models (draft-fossati-seat-expat):

* ``--model background`` (default): the attesting side sends its TDX quote; the verifying side
  checks it itself (DCAP with dcap-qvl, collateral, appraisal policy).
* ``--model passport --verifier URL``: the attesting side has the verifier service at URL
  appraise its quote and sends the signed attestation result (an EAR); the verifying side
  checks the EAR (signature under a trusted verifier key, time, ``eat_nonce`` = this
  connection's binding, status). Its trusted key comes from ``--verifier-key FILE`` or, for the
  demo only, from the service's discovery endpoint (trust on first use).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import ipaddress
import logging
from pathlib import Path

from attquic import logs
from attquic.attestation import Attester, HardwareAttestation, IssuerAssertion, Verifier
from attquic.demo_ca import DemoCA
from attquic.ea.identity import SigningIdentity, from_pem
from attquic.ear import EarAttestation, EarChannelVerifier, EarVerifier, KeySource, load_public_key
from attquic.errors import VerifierUnavailable
from attquic.pkix import TrustStore
from attquic.tdx.collateral import CollateralSource, FileCollateral, PccsCollateral
from attquic.tdx.configfs import ConfigfsTsmAttester
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.simulated import SimulatedCollateral, SimulatedTdxAttester, SimulatedTdxHierarchy
from attquic.tdx.verifier import TdxVerifier
from attquic.verifier_service import PassportAttester, VerifierClient

ALPN = "attquic-echo"
HERE = Path(__file__).resolve().parent
MODELS = ("background", "passport")


def add_logging_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging (stderr; stdout carries the results)")
    volume = group.add_mutually_exclusive_group()
    volume.add_argument("-v", "--verbose", action="store_true", help="debug lines too")
    volume.add_argument("-q", "--quiet", action="store_true", help="errors only")
    group.add_argument(
        "--log-format",
        choices=("console", "json"),
        default="console",
        help="console lines (default) or one JSON object per line",
    )


def configure_logging(args: argparse.Namespace) -> None:
    """attquic's log lines (and the simulated-TDX warning) on stderr, as the flags say."""
    if args.verbose:
        level = logging.DEBUG
    elif args.quiet:
        level = logging.ERROR
    else:
        level = logging.INFO
    handler = logs.configure(level, log_format=args.log_format)
    examples = logging.getLogger("examples")  # the examples' own notes, alike
    examples.handlers[:] = [handler]
    examples.setLevel(level)
    examples.propagate = False


class StartupError(Exception):
    """The example cannot start; the message is the one line to print."""


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("attestation model")
    group.add_argument(
        "--model",
        choices=MODELS,
        default="background",
        help="background: send/check TDX evidence (default); passport: send/check an "
        "attestation result (EAR) issued by the verifier service",
    )
    group.add_argument(
        "--verifier",
        metavar="URL",
        help="verifier service (Veraison verification API), e.g. http://127.0.0.1:8080; "
        "with --model passport the attesting side gets its EAR there, and the verifying side "
        "fetches the EAR key from its discovery endpoint unless --verifier-key is given",
    )
    group.add_argument(
        "--verifier-key",
        type=Path,
        metavar="FILE",
        help="with --model passport: the verifier service's EAR verification key (JWK or PEM) "
        "to trust; without it the key is fetched from --verifier (trust on first use, demo only)",
    )


def check_model_flags(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *, attests: bool, verifies: bool
) -> None:
    """Reject flag combinations the chosen model cannot use (exits via ``parser.error``)."""
    if args.model != "passport":
        if args.verifier is not None or args.verifier_key is not None:
            parser.error("--verifier and --verifier-key need --model passport")
        return
    if attests and args.verifier is None:
        parser.error("--model passport: the attesting side needs --verifier URL")
    if verifies and args.verifier is None and args.verifier_key is None:
        parser.error("--model passport: verifying needs --verifier-key FILE or --verifier URL")


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
    group = parser.add_argument_group(
        "verification (this side verifies the peer; --model background only)"
    )
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


def _quote_source(args: argparse.Namespace) -> ConfigfsTsmAttester | SimulatedTdxAttester:
    if args.attester == "configfs":
        return ConfigfsTsmAttester(root=args.configfs_root)
    return SimulatedTdxAttester(version=args.quote_version)


async def build_attester(
    args: argparse.Namespace, resources: contextlib.AsyncExitStack
) -> Attester:
    """The attester the flags describe; a passport attester's HTTP client joins ``resources``."""
    quotes = _quote_source(args)
    if args.model != "passport":
        return quotes
    client = await resources.enter_async_context(VerifierClient(args.verifier))
    try:  # fail at start-up, not on every client's connection
        await client.discover()
    except VerifierUnavailable as exc:
        raise StartupError(
            f"the verifier service at {args.verifier} is unreachable: {exc}"
        ) from None
    return PassportAttester(quotes, client)


async def build_verifier(args: argparse.Namespace) -> Verifier:
    """The verifier the flags describe (passport: may fetch the EAR key once, see the flags)."""
    if args.model == "passport":
        return await _passport_verifier(args)
    return _background_verifier(args)


async def _passport_verifier(args: argparse.Namespace) -> Verifier:
    """An EAR verifier trusting ``--verifier-key``, or the key the service publishes (TOFU)."""
    key: KeySource
    if args.verifier_key is not None:
        key = load_public_key(args.verifier_key)
    else:
        try:
            async with VerifierClient(args.verifier) as client:
                key = (await client.discover()).ear_verification_key
        except VerifierUnavailable as exc:
            raise StartupError(
                f"the verifier service at {args.verifier} is unreachable: {exc}"
            ) from None
        logging.getLogger("examples").warning(
            "trusting the EAR key that %s publishes, fetched just now (trust on first use): "
            "whoever answers at that URL can vouch for any peer. Demo only; give the "
            "verifier's key with --verifier-key in any real deployment.",
            args.verifier,
        )
    return EarChannelVerifier(EarVerifier([key]))


def _background_verifier(args: argparse.Namespace) -> Verifier:
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


def _utc(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _describe_assertion(result: IssuerAssertion) -> list[str]:
    lines = [
        f"attestation: {type(result).__name__}: ASSERTED BY A TOKEN ISSUER, "
        "not verified from hardware evidence on this side",
        f"  type: {result.media_type}",
        f"  issuer: {result.issuer}",
    ]
    if isinstance(result, EarAttestation):
        claims = result.claims
        lines.append(f"  status: {result.status.json_name} (submodule {result.submodule!r})")
        if result.trust_vector is not None:
            lines.append(f"  trustworthiness vector: {result.trust_vector.to_json()}")
        policy_ids = claims.submods[result.submodule].policy_ids
        if policy_ids:
            lines.append(f"  appraisal policy: {', '.join(policy_ids)}")
        lines.append(f"  issued at: {_utc(claims.iat)}, expires: {_utc(claims.exp)}")
    lines.append(f"  verified_at: {_utc(result.verified_at)}")
    return lines


def describe(result: object) -> list[str]:
    """Human-readable lines about a verified attestation result."""
    if isinstance(result, IssuerAssertion):
        return _describe_assertion(result)
    if isinstance(result, HardwareAttestation) and result.trust_anchor.simulated:
        lines = [
            f"attestation: {type(result).__name__}: SIMULATED: verified against an explicitly "
            "trusted TEST root, not the hardware vendor's (proves nothing about real hardware)"
        ]
    else:
        lines = [f"attestation: {type(result).__name__} (verified from hardware evidence)"]
    for name in ("tcb_status", "advisory_ids", "mrtd", "rtmrs", "fmspc", "verified_at"):
        value = getattr(result, name, None)
        if value is None:
            continue
        if name == "verified_at":
            value = _utc(value)
        elif isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple | list) and value and isinstance(value[0], bytes):
            value = [v.hex() for v in value]
        lines.append(f"  {name}: {value}")
    return lines


# --- identity and certificates (draft-fossati-seat-expat -04 §3.3) ------------------------------

_WILDCARDS = {"", "0.0.0.0", "::"}


def add_identity_flags(parser: argparse.ArgumentParser, *, server: bool) -> None:
    """--cert/--key (this side's certificate) and --ca (what it trusts); default: demo CA."""
    group = parser.add_argument_group(
        "identity and certificates (default: the built-in DEMO CA, for demos only)"
    )
    own = "TLS certificate, also the authenticator's" if server else "authenticator certificate"
    group.add_argument(
        "--cert", type=Path, help=f"{own} (PEM chain, leaf first); default: issued by the demo CA"
    )
    group.add_argument("--key", type=Path, help="private key of --cert (PEM)")
    group.add_argument(
        "--ca",
        *([] if server else ["--ca-cert"]),
        type=Path,
        dest="ca",
        help="CA certificates (PEM) that issue the peer's certificates"
        + ("" if server else ": they verify the server's TLS certificate")
        + "; default: the demo CA",
    )


def check_identity_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")


def _uses_demo_ca(args: argparse.Namespace) -> bool:
    return args.cert is None or args.ca is None


def note_demo_ca(args: argparse.Namespace, who: str) -> None:
    if _uses_demo_ca(args):
        logging.getLogger("examples").warning(
            "%s: using the built-in DEMO CA, whose key anyone can derive: it proves nothing "
            "outside a demo. Bring real certificates with --cert/--key/--ca.",
            who,
        )


def load_identity(args: argparse.Namespace, *, server: bool, host: str = "") -> SigningIdentity:
    """This side's certificate and key: --cert/--key, or a fresh one from the demo CA (a server's
    names: localhost, 127.0.0.1, ::1 and ``host``)."""
    if args.cert is not None:
        return from_pem(args.cert.read_bytes(), args.key.read_bytes())
    if not server:
        return DemoCA.default().issue("attquic echo client", server=False)
    dns, ips = {"localhost"}, {"127.0.0.1", "::1"}
    if host not in _WILDCARDS:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            dns.add(host)
        else:
            ips.add(host)
    return DemoCA.default().issue(
        "attquic echo server", dns_names=sorted(dns), ip_addresses=sorted(ips), client=False
    )


def trust_store(args: argparse.Namespace) -> TrustStore:
    """--ca, or the demo CA."""
    if args.ca is not None:
        return TrustStore.from_pem_file(args.ca)
    return DemoCA.default().trust_store
