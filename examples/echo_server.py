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
    async with contextlib.AsyncExitStack() as resources:
        try:
            # The TLS certificate (the demo CA's unless --cert/--key) is also the authenticator's
            # identity: the client checks that the attested key is the one TLS verified.
            identity = _common.load_identity(args, server=True, host=args.host)
            tls.certificate, tls.private_key = identity.leaf, identity.private_key  # type: ignore[assignment]
            tls.certificate_chain = list(identity.chain[1:])
            attestation = attquic.AttestationConfiguration(
                attester=await _common.build_attester(args, resources),
                verifier=await _common.build_verifier(args) if args.mutual else None,
                trust_store=_common.trust_store(args) if args.mutual else None,
            )
            server = await attquic.serve(
                args.host, args.port, configuration=tls, attestation=attestation, handler=echo
            )
        except (attquic.AttquicError, OSError, _common.StartupError) as exc:
            print(f"echo server: cannot start: {exc}", file=sys.stderr)
            return 2
        _common.note_demo_ca(args, "echo server")
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
    _common.add_identity_flags(parser, server=True)
    _common.add_model_flags(parser)
    _common.add_attester_flags(parser)
    _common.add_verifier_flags(parser)
    _common.add_logging_flags(parser)
    args = parser.parse_args()
    _common.check_identity_flags(parser, args)
    _common.check_model_flags(parser, args, attests=True, verifies=args.mutual)
    return args


if __name__ == "__main__":
    arguments = parse_args()
    _common.configure_logging(arguments)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(anyio.run(main, arguments))
