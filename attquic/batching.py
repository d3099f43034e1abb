"""Batched evidence: one quote for every attestation request that queued while the last was made.

On a real TDX host a quote takes ~39 ms and the host's quoting service makes one at a time, so
one fresh quote per request caps an attested server near 25 connections/s. Batching keeps
per-connection freshness and binding and lifts that cap (docs/protocol.md, "Batched evidence"):

* every request of one batch shares the authenticator key (``aik_pub_hash``) and the TLS hash;
  its leaf is its binding;
* ``root = MTH(leaf_0 .. leaf_{n-1})`` (RFC 9162 §2.1.1 with SHA-512) is the nonce the quote
  source commits to: REPORTDATA = SHA-512(root ‖ aik_pub_hash), or the EAR's ``eat_nonce``;
* each connection receives a CMW collection ``{"evidence": <the record an unbatched answer would
  carry>, "batch-proof": <its inclusion proof>}``; a batch of one is answered unbatched (the
  quote commits to the request's own binding, no proof);
* the relying party recomputes the root from its own binding and the proof and verifies the
  evidence against that root (:func:`resolve_batched`); any inconsistency is BINDING_MISMATCH.

Attester side: :class:`EvidenceBatcher` turns any "nonce in, CMW out" function (any
:class:`~attquic.attestation.Attester`'s ``attest``) into a batching one; :class:`BatchedAttester`
wraps any attester that way. The built-in TDX attesters (simulated, configfs-tsm) and the
passport attester batch by default.

Bounds: a batch holds at most ``max_batch_size`` requests (default 64); at most ``max_queue``
requests wait (default 1024; past it a request fails at once, the peer sees a refusal). Each
waiting request costs one future and its binding (~200 bytes), so the batcher holds at most
``max_queue`` of them; a peer can have at most two requests in flight (MAX_PEER_REQUESTS_IN_FLIGHT).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from attquic import merkle, profile
from attquic._eager import eager_task
from attquic.attestation import Attester
from attquic.cmw import CMW, CMWCollection, CMWRecord
from attquic.errors import (
    AttesterUnavailable,
    BatchProofError,
    BindingMismatch,
    ConfigurationError,
)
from attquic.keyschedule import Binding
from attquic.logs import get_logger

__all__ = [
    "BATCH_PROOF_LABEL",
    "BATCH_PROOF_MEDIA_TYPE",
    "DEFAULT_MAX_BATCH_QUEUE",
    "DEFAULT_MAX_BATCH_SIZE",
    "EVIDENCE_LABEL",
    "MAX_PROOF_LENGTH",
    "PROOF_NODE_SIZE",
    "BatchedAttester",
    "EvidenceBatcher",
    "InclusionProof",
    "batched_cmw",
    "resolve_batched",
    "split_batched",
]

#: Media type of the ``"batch-proof"`` record: CBOR ``[tree_size, leaf_index, [path...]]``.
BATCH_PROOF_MEDIA_TYPE: Final = profile.BATCH_PROOF_MEDIA_TYPE
#: Collection labels of a batched answer.
EVIDENCE_LABEL: Final = "evidence"
BATCH_PROOF_LABEL: Final = "batch-proof"
#: Requests one quote covers at most, by default.
DEFAULT_MAX_BATCH_SIZE: Final = profile.DEFAULT_MAX_BATCH_SIZE
#: Requests waiting for a quote at most, by default (more fail at once).
DEFAULT_MAX_BATCH_QUEUE: Final = 1024
#: The batch tree's hash (SHA-512) and its node length.
PROOF_NODE_SIZE: Final = 64
#: Longest path a proof may carry (a tree of up to 2^63 leaves).
MAX_PROOF_LENGTH: Final = 63

_log = get_logger("attquic.batching")


# --- the proof record --------------------------------------------------------------------------


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise ValueError("value does not fit a CBOR head")


class _ProofReader:
    """Strict reader of the deterministic CBOR of one proof (shortest heads, definite lengths)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def head(self, what: str) -> tuple[int, int]:
        if self._pos >= len(self._data):
            raise BatchProofError(f"batch proof truncated before {what}")
        initial = self._data[self._pos]
        self._pos += 1
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info
        sizes = {24: 1, 25: 2, 26: 4, 27: 8}
        if info not in sizes:
            raise BatchProofError(f"batch proof {what}: indefinite or reserved CBOR length")
        size = sizes[info]
        raw = self._data[self._pos : self._pos + size]
        if len(raw) != size:
            raise BatchProofError(f"batch proof truncated in {what}")
        self._pos += size
        value = int.from_bytes(raw, "big")
        if _cbor_head(major, value) != bytes([initial]) + raw:
            raise BatchProofError(f"batch proof {what}: not the shortest CBOR encoding")
        return major, value

    def uint(self, what: str) -> int:
        major, value = self.head(what)
        if major != 0:
            raise BatchProofError(f"batch proof {what} is not an unsigned integer")
        return value

    def array(self, what: str) -> int:
        major, value = self.head(what)
        if major != 4:
            raise BatchProofError(f"batch proof {what} is not an array")
        return value

    def node(self, what: str) -> bytes:
        major, length = self.head(what)
        if major != 2:
            raise BatchProofError(f"batch proof {what} is not a byte string")
        if length != PROOF_NODE_SIZE:
            raise BatchProofError(f"batch proof {what} has {length} bytes, not {PROOF_NODE_SIZE}")
        value = self._data[self._pos : self._pos + length]
        if len(value) != length:
            raise BatchProofError(f"batch proof truncated in {what}")
        self._pos += length
        return value

    def end(self) -> None:
        if self._pos != len(self._data):
            raise BatchProofError(f"{len(self._data) - self._pos} bytes after the batch proof")


@dataclass(frozen=True)
class InclusionProof:
    """One request's place in its batch: RFC 9162 §2.1.3 inclusion proof over SHA-512."""

    tree_size: int
    leaf_index: int
    path: tuple[bytes, ...]

    def encode(self) -> bytes:
        """Deterministic CBOR ``[tree_size, leaf_index, [path...]]``."""
        out = bytearray(_cbor_head(4, 3))
        out += _cbor_head(0, self.tree_size) + _cbor_head(0, self.leaf_index)
        out += _cbor_head(4, len(self.path))
        for node in self.path:
            out += _cbor_head(2, len(node)) + node
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> InclusionProof:
        """Parse a proof; anything but the exact deterministic form is :class:`BatchProofError`.

        Checks the shape only (sizes, types, node lengths, path length bound); whether the
        proof is right for its index and size is :meth:`root`'s job.
        """
        reader = _ProofReader(bytes(data))
        if reader.array("proof") != 3:
            raise BatchProofError("a batch proof is an array of exactly 3 items")
        tree_size = reader.uint("tree_size")
        leaf_index = reader.uint("leaf_index")
        length = reader.array("path")
        if length > MAX_PROOF_LENGTH:
            raise BatchProofError(f"batch proof path of {length} elements (at most 63)")
        path = tuple(reader.node(f"path[{i}]") for i in range(length))
        reader.end()
        return cls(tree_size, leaf_index, path)

    def root(self, leaf: bytes) -> bytes:
        """The batch root this proof leads to from ``leaf`` (this side's own binding).

        Raises :class:`~attquic.errors.MerkleProofError` when the index is out of range or the
        path has the wrong length for the size.
        """
        return merkle.root_from_inclusion_proof(
            merkle.leaf_hash(leaf, merkle.sha512),
            self.leaf_index,
            self.tree_size,
            self.path,
            merkle.sha512,
        )


# --- the batched CMW ----------------------------------------------------------------------------


def batched_cmw(evidence: CMW, proof: InclusionProof) -> CMWCollection:
    """The CMW of a batched answer: the batch's evidence plus this request's proof."""
    return CMWCollection(
        {
            EVIDENCE_LABEL: evidence,
            BATCH_PROOF_LABEL: CMWRecord(BATCH_PROOF_MEDIA_TYPE, proof.encode()),
        }
    )


def split_batched(cmw: CMW) -> tuple[CMW, InclusionProof] | None:
    """``(evidence, proof)`` if ``cmw`` is a batched answer, ``None`` if it is not batched.

    A collection with a ``"batch-proof"`` item is batched; it must then have exactly the two
    items, no collection type, and a proof record of the proof media type with a valid proof
    (:class:`~attquic.errors.BatchProofError` otherwise).
    """
    if not isinstance(cmw, CMWCollection) or BATCH_PROOF_LABEL not in cmw.items:
        return None
    if set(cmw.items) != {EVIDENCE_LABEL, BATCH_PROOF_LABEL} or cmw.cmwc_t is not None:
        raise BatchProofError("a batched CMW holds exactly 'evidence' and 'batch-proof'")
    record = cmw.items[BATCH_PROOF_LABEL]
    if not isinstance(record, CMWRecord) or record.type != BATCH_PROOF_MEDIA_TYPE:
        raise BatchProofError(f"'batch-proof' is not a {BATCH_PROOF_MEDIA_TYPE} record")
    if record.ind is not None:
        raise BatchProofError("'batch-proof' carries a CMW indicator")
    return cmw.items[EVIDENCE_LABEL], InclusionProof.decode(record.value)


def resolve_batched(cmw: CMW, binding: Binding, *, accepted: bool) -> tuple[CMW, Binding, int]:
    """What to verify for the CMW a peer sent: ``(evidence, binding to check it against, size)``.

    Unbatched: ``(cmw, binding, 1)`` unchanged. Batched: the inner evidence and the binding
    whose nonce is the root recomputed from this side's own ``binding`` and the proof, with the
    same ``aik_pub_hash`` and hash, and the batch size. The verifier then checks REPORTDATA =
    SHA-512(root ‖ aik_pub_hash) or ``eat_nonce`` = root exactly as for unbatched evidence, so a
    proof for another leaf, a tampered path, index or size, or a batch quoted under another key
    all end in :class:`~attquic.errors.BindingMismatch`. Batched evidence when this side did
    not accept batching (``accepted`` False) is a BindingMismatch too.
    """
    parts = split_batched(cmw)
    if parts is None:
        return cmw, binding, 1
    if not accepted:
        raise BindingMismatch("batched evidence, but this side did not accept batching in SETUP")
    evidence, proof = parts
    root = proof.root(binding.binding)
    return evidence, Binding(binding.hash_name, root, binding.aik_pub_hash), proof.tree_size


# --- the attester side ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Waiter:
    binding: Binding
    future: asyncio.Future[CMW]
    queued_at: float


class EvidenceBatcher:
    """Batches calls to one evidence source.

    ``attest(nonce)`` is the source: given a :class:`~attquic.keyschedule.Binding` whose
    ``binding`` is the batch root, it returns the evidence committing to it (a quote with
    REPORTDATA = SHA-512(root ‖ aik_pub_hash), or an EAR with ``eat_nonce`` = root). Any
    :class:`~attquic.attestation.Attester`'s ``attest`` fits.

    One batch is in flight at a time: a request arriving while the source is idle is quoted at
    once (a batch of one, no added delay, answered unbatched: ``attest`` gets the request's own
    binding and its evidence is the answer); requests arriving while a quote is made wait and the
    next quote covers them all, grouped by (TLS hash, authenticator key), at most
    ``max_batch_size`` per quote, oldest first. A source failure fails every request of that
    batch (:class:`~attquic.errors.AttesterUnavailable`); the next batch tries again. A request
    whose caller is cancelled (its connection closed) leaves the queue, or its batch's answer.
    """

    def __init__(
        self,
        attest: Callable[[Binding], Awaitable[CMW]],
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_queue: int = DEFAULT_MAX_BATCH_QUEUE,
    ) -> None:
        if max_batch_size < 1:
            raise ConfigurationError("max_batch_size must be at least 1")
        if max_queue < 1:
            raise ConfigurationError("max_queue must be at least 1")
        self._attest = attest
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self._queue: deque[_Waiter] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._busy_on: asyncio.AbstractEventLoop | None = None
        """The loop a quote is being made on (by the worker or a lone request), None when idle."""
        self.batch_sizes: deque[int] = deque(maxlen=1024)
        """Sizes of the most recent batches (at most 1024 kept), for logs and benchmarks."""

    @property
    def queued(self) -> int:
        """Requests waiting for a quote."""
        return len(self._queue)

    async def attest(self, binding: Binding) -> CMW:
        """The batched CMW for ``binding``: the batch's evidence plus this request's proof (or
        the evidence alone, when the batch is this request only)."""
        loop = asyncio.get_running_loop()
        if self._busy_on is not None and self._busy_on is not loop:
            self._worker = None  # a previous event loop's quote or worker: that loop is gone
            self._busy_on = None
            self._queue = deque(w for w in self._queue if w.future.get_loop() is loop)
        if len(self._queue) >= self.max_queue:
            raise AttesterUnavailable(
                f"{len(self._queue)} attestation requests already wait for a quote"
            )
        waiter = _Waiter(binding, loop.create_future(), time.perf_counter())
        if self._busy_on is None and not self._queue:
            return await self._quote_alone(loop, waiter)
        self._queue.append(waiter)
        if self._busy_on is None:
            self._start_worker(loop)
        try:
            return await waiter.future
        finally:
            if not waiter.future.done() or waiter.future.cancelled():
                with contextlib.suppress(ValueError):
                    self._queue.remove(waiter)  # the connection closed while queued

    async def _quote_alone(self, loop: asyncio.AbstractEventLoop, waiter: _Waiter) -> CMW:
        """The source is idle and nobody waits: quote this request in the caller's own task.

        A worker task would take just this request; without it a source that answers without
        suspending (the simulated attester at no latency) costs no task at all. Requests that
        arrive meanwhile queue, and the worker starts for them when this quote is done (or
        abandoned: its connection closed).
        """
        self._busy_on = loop
        try:
            await self._quote([waiter])
        finally:
            self._busy_on = None
            if self._queue:
                self._start_worker(loop)
        return waiter.future.result()  # the evidence, or the batch's AttesterUnavailable

    def _start_worker(self, loop: asyncio.AbstractEventLoop) -> None:
        # Started eagerly: a batch whose source answers without suspending is quoted and
        # answered before eager_task returns, without an extra loop iteration.
        self._busy_on = loop
        self._worker = eager_task(loop, self._run())

    async def _run(self) -> None:
        batch: list[_Waiter] = []
        try:
            while batch := self._take():
                await self._quote(batch)
        finally:
            # not self._worker.done(): a worker that finished inside its eager first step is
            # only marked done one loop iteration later, and a request queued meanwhile would wait
            # for a worker that has already left
            self._busy_on = None
            for waiter in [*batch, *self._queue]:  # only if the worker itself was cancelled
                waiter.future.cancel()

    def _take(self) -> list[_Waiter]:
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()
        if not self._queue:
            return []
        first = self._queue[0].binding
        key = (first.hash_name, first.aik_pub_hash)
        batch: list[_Waiter] = []
        rest: deque[_Waiter] = deque()
        for waiter in self._queue:
            if waiter.future.done():
                continue
            same = (waiter.binding.hash_name, waiter.binding.aik_pub_hash) == key
            if same and len(batch) < self.max_batch_size:
                batch.append(waiter)
            else:
                rest.append(waiter)
        self._queue = rest
        return batch

    async def _quote(self, batch: Sequence[_Waiter]) -> None:
        first = batch[0].binding
        paths: Sequence[Sequence[bytes]] | None = None
        if len(batch) == 1:
            # A batch of one is answered unbatched: the quote commits to the request's own
            # binding, as without batching, and there is no proof to send or to check (a relying
            # party that accepts batching accepts both forms).
            nonce = first
        else:
            root, paths = merkle.inclusion_proofs([w.binding.binding for w in batch], merkle.sha512)
            nonce = Binding(first.hash_name, root, first.aik_pub_hash)
        started = time.perf_counter()
        try:
            evidence = await self._attest(nonce)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any source failure fails this batch, and only this batch
            _log.error("evidence.batch_failed", size=len(batch), error=repr(exc))
            for waiter in batch:
                if not waiter.future.done():
                    failure = AttesterUnavailable(f"the batch's quote failed: {exc!r}")
                    failure.__cause__ = exc
                    waiter.future.set_exception(failure)
            return
        self.batch_sizes.append(len(batch))
        # logged in the next loop iteration, after the transmit that carries the answers (in
        # the live loop the record cost the path to the authenticator 60-170 us)
        asyncio.get_running_loop().call_soon(
            functools.partial(
                _log.info,
                "evidence.batch",
                size=len(batch),
                queued=len(self._queue),
                ms_quote=round((time.perf_counter() - started) * 1000, 3),
                ms_oldest_wait=round((started - batch[0].queued_at) * 1000, 3),
            )
        )
        if paths is None:
            if not batch[0].future.done():
                batch[0].future.set_result(evidence)
            return
        for index, (waiter, path) in enumerate(zip(batch, paths, strict=True)):
            if not waiter.future.done():
                proof = InclusionProof(len(batch), index, tuple(path))
                waiter.future.set_result(batched_cmw(evidence, proof))


class BatchedAttester:
    """Any :class:`~attquic.attestation.Attester`, batching toward peers that accept it.

    ``attest`` is the wrapped attester's, unbatched; ``attest_batched`` goes through an
    :class:`EvidenceBatcher` over it.
    """

    def __init__(
        self,
        attester: Attester,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_queue: int = DEFAULT_MAX_BATCH_QUEUE,
    ) -> None:
        self.attester = attester
        self.batcher = EvidenceBatcher(
            attester.attest, max_batch_size=max_batch_size, max_queue=max_queue
        )

    async def attest(self, binding: Binding) -> CMW:
        return await self.attester.attest(binding)

    async def attest_batched(self, binding: Binding) -> CMW:
        return await self.batcher.attest(binding)
