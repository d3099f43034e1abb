"""Attested echo server: answers each stream with the bytes it received.

By default the server attests with the SIMULATED TDX (not a TEE) and the client verifies;
``--mutual`` also requires and verifies the client's attestation. ``--model passport
--verifier URL`` sends an attestation result (EAR) from that verifier service instead of the
quote (see examples/_common.py and docs/passport.md).

    python examples/echo_server.py --host 127.0.0.1 --port 4433
    python examples/echo_server.py --model passport --verifier http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

import anyio
from aioquic.quic.configuration import QuicConfiguration

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import attquic
from attquic.api import AttestedConnection
from attquic.ea.identity import from_pem, generate_self_signed


async def echo(connection: AttestedConnection) -> None:
    if connection.peer_attestation is not None:
        print("\n".join(["client attested:", *_common.describe(connection.peer_attestation)]))
    while True:
        try:
            stream = await connection.accept_stream()
        except attquic.ConnectionClosed:
            return
        data = await stream.receive_all()
        await stream.send(data)
        await stream.send_eof()


async def main(args: argparse.Namespace) -> int:
    tls = QuicConfiguration(is_client=False, alpn_protocols=[_common.ALPN])
    if args.cert and args.key:
        tls.load_cert_chain(args.cert, args.key)
    else:
        identity = generate_self_signed("p256", common_name="attquic echo server")
        tls.certificate, tls.private_key = identity.leaf, identity.private_key
    async with contextlib.AsyncExitStack() as resources:
        try:
            attestation = attquic.AttestationConfiguration(
                attester=await _common.build_attester(args, resources),
                verifier=await _common.build_verifier(args) if args.mutual else None,
                identity=from_pem(args.cert.read_bytes(), args.key.read_bytes())
                if args.attest_with_tls_key
                else None,
            )
        except attquic.AttquicError as exc:
            print(f"echo server: cannot start: {exc}", file=sys.stderr)
            return 2
        server = await attquic.serve(
            args.host, args.port, configuration=tls, attestation=attestation, handler=echo
        )
        print(
            f"attested echo server ({args.model} model) listening on {args.host}:{server.port}",
            flush=True,
        )
        async with server:
            await asyncio.Event().wait()
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--mutual", action="store_true", help="also verify the client")
    parser.add_argument("--cert", type=Path, help="TLS certificate (PEM); default: generated")
    parser.add_argument("--key", type=Path, help="TLS private key (PEM)")
    parser.add_argument(
        "--attest-with-tls-key",
        action="store_true",
        help="use the TLS certificate and key as the authenticator identity",
    )
    _common.add_model_flags(parser)
    _common.add_attester_flags(parser)
    _common.add_verifier_flags(parser)
    args = parser.parse_args()
    if args.attest_with_tls_key and not (args.cert and args.key):
        parser.error("--attest-with-tls-key needs --cert and --key")
    _common.check_model_flags(parser, args, attests=True, verifies=args.mutual)
    return args


if __name__ == "__main__":
    arguments = parse_args()
    _common.configure_logging(arguments.verbose)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(anyio.run(main, arguments))
