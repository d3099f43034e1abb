"""Attested echo client: verifies the server's attestation, then sends one message.

With ``--model background`` (default) it verifies the server's TDX quote itself; with
``--model passport`` it checks the attestation result (EAR) a verifier service issued for the
server, which is an assertion by that token issuer, not a hardware verification on this side.

    python examples/echo_client.py --host 127.0.0.1 --port 4433 --message hello
    python examples/echo_client.py --model passport --verifier-key ear-key.pem

Exit status 0 only if the channel was attested and the echo came back intact.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import anyio
from aioquic.quic.configuration import QuicConfiguration

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import attquic


async def main(args: argparse.Namespace) -> int:
    tls = QuicConfiguration(is_client=True, alpn_protocols=[_common.ALPN])
    async with contextlib.AsyncExitStack() as resources:
        try:
            # TLS verifies the server's certificate (the demo CA's unless --ca), and attestation
            # adds to it: the server must attest with that very certificate (or one from --ca).
            trusted = _common.trust_store(args)
            tls.cadata = trusted.pem
            attestation = attquic.AttestationConfiguration(
                verifier=await _common.build_verifier(args),
                attester=await _common.build_attester(args, resources) if args.mutual else None,
                identity=_common.load_identity(args, server=False) if args.mutual else None,
                trust_store=trusted,
            )
        except (attquic.AttquicError, OSError, _common.StartupError) as exc:
            print(f"echo client: cannot start: {exc}", file=sys.stderr)
            return 2
        _common.note_demo_ca(args, "echo client")
        try:
            async with attquic.connect(
                args.host,
                args.port,
                configuration=tls,
                attestation=attestation,
                handshake_timeout=args.handshake_timeout,
            ) as connection:
                print(
                    "\n".join(
                        [
                            f"server attested ({args.model} model):",
                            *_common.describe(connection.peer_attestation),
                        ]
                    )
                )
                stream = await connection.open_stream()
                await stream.send(args.message.encode())
                await stream.send_eof()
                echo = await stream.receive_all()
        except attquic.HandshakeFailed as exc:  # no answer, ALPN, TLS certificate
            print(f"echo client: {exc}", file=sys.stderr)
            return 1
        except attquic.ConnectionClosed as exc:
            print(f"attestation failed: {exc}", file=sys.stderr)
            return 1
    print(f"echo: {echo.decode(errors='replace')}")
    if echo != args.message.encode():
        print("echo mismatch", file=sys.stderr)
        return 1
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--message", default="hello from an attested channel")
    parser.add_argument("--mutual", action="store_true", help="also attest this client")
    _common.add_identity_flags(parser, server=False)
    _common.add_model_flags(parser)
    _common.add_attester_flags(parser)
    _common.add_verifier_flags(parser)
    _common.add_logging_flags(parser)
    parser.add_argument(
        "--handshake-timeout",
        type=float,
        default=attquic.DEFAULT_HANDSHAKE_TIMEOUT,
        metavar="SECONDS",
        help="give up when the server does not answer within this time (default %(default)g)",
    )
    args = parser.parse_args()
    _common.check_identity_flags(parser, args)
    _common.check_model_flags(parser, args, attests=args.mutual, verifies=True)
    return args


if __name__ == "__main__":
    arguments = parse_args()
    _common.configure_logging(arguments)
    sys.exit(anyio.run(main, arguments))
