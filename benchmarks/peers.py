"""Benchmark peers: the server and client processes, plain aioquic or attquic.

Run by :mod:`harness` as separate processes talking UDP over loopback::

    python benchmarks/peers.py server --mode plain|attested
    python benchmarks/peers.py client --mode plain|attested --port PORT

Each process reads one JSON command per line on stdin and answers with one JSON line on
stdout; everything else (progress, the simulated-TDX banner) goes to stderr. The server's
first answer, unprompted, is ``{"port": ...}``.

Both modes use the same TLS setup (P-256 self-signed certificate, aioquic's default suites,
no certificate verification on the client, the same idle timeout) and the same tiny
application protocol, chosen by the first byte of every stream:

* ``E`` echo: read to end of stream, send it all back, end the stream;
* ``P`` ping-pong: send back every chunk as soon as it arrives, until end of stream;
* ``S`` sink: count bytes to end of stream, answer with the count (8 bytes, big-endian);
* ``D`` download: the next 8 bytes are a size; send that many bytes, end the stream.

The attested mode is the default deployment: the server attests with the simulated TDX,
the client verifies it with full DCAP (dcap-qvl) and the example appraisal policy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil
from aioquic.asyncio import QuicConnectionProtocol
from aioquic.asyncio import connect as quic_connect
from aioquic.asyncio import serve as quic_serve
from aioquic.quic import events as quic_events
from aioquic.quic.configuration import QuicConfiguration

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "simulated-policy.toml"
ALPN = "attquic-bench"
IDLE_TIMEOUT = 600.0
CHUNK = 65536
OPEN_CONCURRENCY = 16

Json = dict[str, Any]

# --- logging: keep the protocol's timing events, drop everything else ----------------------

CAPTURED: list[Json] = []
_KEPT_EVENTS = frozenset({"gate.opened"})


class _Capture(logging.Handler):
    """Keeps the timing events' fields (attquic puts them on ``record.attquic``), prints nothing."""

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "attquic", None)
        if event is not None and event.get("event") in _KEPT_EVENTS:
            CAPTURED.append(dict(event))


def configure_logging() -> None:
    """Make logging cheap: no output; the timing events (INFO) are captured."""
    logger = logging.getLogger("attquic")
    logger.handlers[:] = [_Capture()]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    from attquic.tdx.simulated import SimulatedTdxWarning

    warnings.simplefilter("ignore", SimulatedTdxWarning)


# --- one stream API over both stacks --------------------------------------------------------


class Stream(Protocol):
    async def send(self, data: bytes) -> None: ...

    async def send_eof(self) -> None: ...

    async def receive(self) -> bytes:
        """The next chunk; ``b""`` at end of stream."""
        ...


class PlainStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send(self, data: bytes) -> None:
        self._writer.write(data)

    async def send_eof(self) -> None:
        self._writer.write_eof()

    async def receive(self) -> bytes:
        return await self._reader.read(CHUNK)


class AttestedStreamAdapter:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def send(self, data: bytes) -> None:
        await self._stream.send(data)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def receive(self) -> bytes:
        import anyio

        try:
            data: bytes = await self._stream.receive(CHUNK)
        except anyio.EndOfStream:
            return b""
        return data


# --- the server application -----------------------------------------------------------------


async def serve_stream(stream: Stream) -> None:
    """One application stream; the first byte picks the operation."""
    first = await stream.receive()
    if not first:
        return
    op, rest = first[:1], first[1:]
    if op == b"E":
        data = bytearray(rest)
        while chunk := await stream.receive():
            data += chunk
        await stream.send(bytes(data))
    elif op == b"P":
        if rest:
            await stream.send(rest)
        while chunk := await stream.receive():
            await stream.send(chunk)
    elif op == b"S":
        count = len(rest)
        while chunk := await stream.receive():
            count += len(chunk)
        await stream.send(count.to_bytes(8, "big"))
    elif op == b"D":
        header = bytearray(rest)
        while len(header) < 8 and (chunk := await stream.receive()):
            header += chunk
        await send_bytes(stream, int.from_bytes(header[:8], "big"))
    await stream.send_eof()


async def send_bytes(stream: Stream, size: int) -> None:
    block = b"\x5a" * CHUNK
    while size > 0:
        await stream.send(block if size >= CHUNK else block[:size])
        size -= CHUNK


def tls_identity() -> tuple[Any, Any]:
    from attquic.demo_ca import DemoCA

    # the demo CA issues the TLS certificate, which is also the authenticator identity
    identity = DemoCA.default().issue(
        "attquic bench server", ip_addresses=["127.0.0.1"], client=False
    )
    return identity.leaf, identity.private_key


def server_tls() -> QuicConfiguration:
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], idle_timeout=IDLE_TIMEOUT)
    config.certificate, config.private_key = tls_identity()
    return config


def client_tls() -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], idle_timeout=IDLE_TIMEOUT)
    from attquic.demo_ca import DemoCA

    config.cadata = DemoCA.default().certificate_pem  # expat -04 §3.3: TLS verifies the server
    return config


class TimedQuicProtocol(QuicConnectionProtocol):
    """Plain aioquic's client protocol, stamping HandshakeCompleted like attquic's adapter does
    (``perf_counter`` on arrival of the event, before anything else handles it)."""

    handshake_done: float | None = None

    def quic_event_received(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.HandshakeCompleted):
            self.handshake_done = time.perf_counter()
        super().quic_event_received(event)


def handshake_split(started: float, handshake_done: float | None, usable: float) -> Json:
    """connect() -> HandshakeCompleted -> connect() returned, in ms, the same for both modes."""
    if handshake_done is None:
        return {}
    return {
        "handshake": (handshake_done - started) * 1000,
        "after handshake": (usable - handshake_done) * 1000,
    }


@dataclass
class TaskSet:
    """Keeps strong references to fire-and-forget tasks."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def start_plain_server(tasks: TaskSet) -> tuple[int, Callable[[], None]]:
    def on_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.spawn(serve_stream(PlainStream(reader, writer)))

    server = await quic_serve("127.0.0.1", 0, configuration=server_tls(), stream_handler=on_stream)
    transport = server._transport
    assert transport is not None
    return int(transport.get_extra_info("sockname")[1]), server.close


def server_attestation() -> Any:
    import attquic
    from attquic.tdx.simulated import SimulatedTdxAttester

    return attquic.AttestationConfiguration(attester=SimulatedTdxAttester())


async def start_attested_server(tasks: TaskSet) -> tuple[int, Callable[[], None]]:
    import attquic

    async def handler(connection: attquic.AttestedConnection) -> None:
        while True:
            try:
                stream = await connection.accept_stream()
            except attquic.ConnectionClosed:
                return
            tasks.spawn(serve_stream(AttestedStreamAdapter(stream)))

    server = await attquic.serve(
        "127.0.0.1",
        0,
        configuration=server_tls(),
        attestation=server_attestation(),
        handler=handler,
    )
    return server.port, server.close


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


async def commands() -> AsyncIterator[Json]:
    """JSON commands from stdin, one per line, until EOF or ``{"cmd": "quit"}``."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        command: Json = json.loads(line)
        if command.get("cmd") == "quit":
            return
        yield command


def answer(payload: Json) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def run_server(mode: str) -> None:
    tasks = TaskSet()
    start = start_plain_server if mode == "plain" else start_attested_server
    port, close = await start(tasks)
    answer({"port": port, "pid": os.getpid()})
    async for command in commands():
        cmd = command["cmd"]
        if cmd == "rss":
            answer({"rss": rss()})
        elif cmd == "stats":
            evidence = [
                ms
                for event in CAPTURED
                if event["event"] == "gate.opened"
                for ms in event.get("ms_evidence") or []
            ]
            CAPTURED.clear()
            answer({"evidence_ms": evidence})
        else:
            answer({"error": f"unknown command {cmd!r}"})
    close()


# --- the client ------------------------------------------------------------------------------


@dataclass
class Opened:
    """An open connection: how to open streams on it and how to close it."""

    open_stream: Callable[[], Awaitable[Stream]]
    stack: contextlib.AsyncExitStack
    gate_s: float
    """Seconds from connect() to the connection being usable (handshake, and attestation)."""
    split_ms: Json


class Client:
    """Opens connections of one mode to one server and runs the measurements on them."""

    def __init__(self, mode: str, port: int) -> None:
        self.mode = mode
        self.port = port
        self.closing = TaskSet()
        self.held: list[Opened] = []
        self._attestation: Any = None
        if mode == "attested":
            import attquic
            from attquic.tdx.policy import AppraisalPolicy
            from attquic.tdx.simulated import SimulatedCollateral, SimulatedTdxHierarchy
            from attquic.tdx.verifier import TdxVerifier

            hierarchy = SimulatedTdxHierarchy.default()
            verifier = TdxVerifier(
                SimulatedCollateral(hierarchy),
                AppraisalPolicy.from_file(POLICY),
                unsafe_root_ca_der=hierarchy.root_ca_der,
            )
            self._attestation = attquic.AttestationConfiguration(verifier=verifier)

    async def open(self) -> Opened:
        stack = contextlib.AsyncExitStack()
        started = time.perf_counter()
        if self.mode == "plain":
            protocol = await stack.enter_async_context(
                quic_connect(
                    "127.0.0.1",
                    self.port,
                    configuration=client_tls(),
                    create_protocol=TimedQuicProtocol,
                )
            )
            usable = time.perf_counter()
            assert isinstance(protocol, TimedQuicProtocol)

            async def open_plain() -> Stream:
                reader, writer = await protocol.create_stream()
                return PlainStream(reader, writer)

            split = handshake_split(started, protocol.handshake_done, usable)
            return Opened(open_plain, stack, usable - started, split)

        import attquic

        CAPTURED.clear()  # only the server reads them ("stats"): keep the client's list empty
        connection = await stack.enter_async_context(
            attquic.connect(
                "127.0.0.1", self.port, configuration=client_tls(), attestation=self._attestation
            )
        )
        usable = time.perf_counter()
        # the adapter's own stamps of HandshakeCompleted and of the verification (private: a
        # benchmark may look inside; the attestation.accepted record is only logged after the
        # transmit that follows the gate, later than connect() returns)
        timings = connection._protocol._timings
        split = handshake_split(started, timings.handshake_done, usable)
        if split and timings.verification:
            split["verification"] = timings.verification[-1] * 1000

        async def open_attested() -> Stream:
            return AttestedStreamAdapter(await connection.open_stream())

        return Opened(open_attested, stack, usable - started, split)

    def close_later(self, opened: Opened) -> None:
        """Close in the background: the 3xPTO drain is not part of what we measure."""
        self.closing.spawn(opened.stack.aclose())

    async def one_echo(self, payload: bytes) -> tuple[float, Opened]:
        """Connect, echo ``payload`` once; seconds to the first echoed byte, the connection."""
        started = time.perf_counter()
        opened = await self.open()
        stream = await opened.open_stream()
        await stream.send(b"E" + payload)
        await stream.send_eof()
        first = await stream.receive()
        ttfb = time.perf_counter() - started
        received = len(first)
        while chunk := await stream.receive():
            received += len(chunk)
        if received != len(payload):
            raise RuntimeError(f"echo returned {received} bytes, sent {len(payload)}")
        return ttfb, opened

    async def ttfb(self, count: int, payload_size: int) -> Json:
        payload = os.urandom(payload_size)
        samples: list[Json] = []
        started = time.perf_counter()
        for _ in range(count):
            ttfb, opened = await self.one_echo(payload)
            split = dict(opened.split_ms)
            split["echo"] = (ttfb - opened.gate_s) * 1000
            samples.append({"ttfb_ms": ttfb * 1000, "split_ms": split})
            self.close_later(opened)
        elapsed = time.perf_counter() - started
        await self.drain()
        return {"samples": samples, "elapsed_s": elapsed}

    async def concurrent(self, count: int, concurrency: int, payload_size: int) -> Json:
        payload = os.urandom(payload_size)
        remaining = count

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                _, opened = await self.one_echo(payload)
                self.close_later(opened)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        await self.drain()
        return {"count": count, "elapsed_s": elapsed}

    async def rtt(self, count: int, size: int) -> Json:
        opened = await self.open()
        stream = await opened.open_stream()
        message = os.urandom(size)
        samples: list[float] = []
        prefix = b"P"
        for _ in range(count):
            started = time.perf_counter()
            await stream.send(prefix + message)
            prefix = b""
            received = 0
            while received < size:
                chunk = await stream.receive()
                if not chunk:
                    raise RuntimeError("ping-pong stream ended early")
                received += len(chunk)
            samples.append((time.perf_counter() - started) * 1e6)
        await stream.send_eof()
        await stream.receive()
        self.close_later(opened)
        await self.drain()
        return {"samples_us": samples}

    async def bulk(self, size: int, direction: str) -> Json:
        opened = await self.open()
        stream = await opened.open_stream()
        cpu_started = time.process_time()
        started = time.perf_counter()
        if direction == "up":
            await stream.send(b"S")
            await send_bytes(stream, size)
            await stream.send_eof()
            reply = bytearray()
            while chunk := await stream.receive():
                reply += chunk
            received = int.from_bytes(reply, "big")
        else:
            await stream.send(b"D" + size.to_bytes(8, "big"))
            await stream.send_eof()
            received = 0
            while chunk := await stream.receive():
                received += len(chunk)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if received != size:
            raise RuntimeError(f"bulk {direction}: {received} bytes arrived of {size}")
        self.close_later(opened)
        await self.drain()
        return {
            "bytes": size,
            "elapsed_s": elapsed,
            "mb_per_s": size / elapsed / 1e6,
            "client_cpu_s": cpu,
        }

    async def hold(self, count: int, payload_size: int) -> Json:
        """Open ``count`` connections (one echo each) and keep them open, idle."""
        payload = os.urandom(payload_size)
        before = rss()
        remaining = count
        step = max(1, count // 5)

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                _, opened = await self.one_echo(payload)
                self.held.append(opened)
                if len(self.held) % step == 0:
                    print(
                        f"  [{self.mode}] {len(self.held)}/{count} connections open",
                        file=sys.stderr,
                        flush=True,
                    )

        await asyncio.gather(*(worker() for _ in range(min(OPEN_CONCURRENCY, count))))
        await asyncio.sleep(0.5)  # let the last handshakes' acknowledgements settle
        return {"held": len(self.held), "client_rss_delta": rss() - before}

    async def release(self) -> Json:
        held, self.held = self.held, []
        await asyncio.gather(*(opened.stack.aclose() for opened in held))
        return {"released": len(held)}

    async def drain(self) -> None:
        while self.closing.tasks:
            await asyncio.gather(*self.closing.tasks, return_exceptions=True)


async def run_client(mode: str, port: int) -> None:
    client = Client(mode, port)
    answer({"ready": True, "pid": os.getpid()})
    async for command in commands():
        cmd = command.pop("cmd")
        method = getattr(client, cmd, None)
        if cmd.startswith("_") or method is None:
            answer({"error": f"unknown command {cmd!r}"})
            continue
        try:
            answer(await method(**command))
        except Exception as exc:  # report, keep serving: the harness decides
            answer({"error": f"{cmd}: {exc!r}"})
    await client.release()
    await client.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("--mode", choices=("plain", "attested"), required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    configure_logging()
    if args.role == "server":
        asyncio.run(run_server(args.mode))
    else:
        asyncio.run(run_client(args.mode, args.port))


if __name__ == "__main__":
    main()
