"""Batched evidence without the network: the proof codec, the relying party's check, the batcher."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attquic import batching, merkle
from attquic._eager import eager_task
from attquic.attestation import BatchingAttester
from attquic.batching import (
    BATCH_PROOF_MEDIA_TYPE,
    BatchedAttester,
    EvidenceBatcher,
    InclusionProof,
    batched_cmw,
    resolve_batched,
    split_batched,
)
from attquic.cmw import CMW, CMWCollection, CMWRecord, decode, encode_cbor
from attquic.errors import (
    AttesterUnavailable,
    BatchProofError,
    BindingMismatch,
    ConfigurationError,
    MerkleProofError,
)
from attquic.keyschedule import Binding

pytestmark = pytest.mark.filterwarnings("ignore::attquic.tdx.simulated.SimulatedTdxWarning")

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
EVIDENCE = CMWRecord("application/x-test-evidence", b"quote", 4)


def _binding(i: int, aik: bytes = b"k" * 48, hash_name: str = "sha256") -> Binding:
    size = 32 if hash_name == "sha256" else 48
    return Binding(hash_name, hashlib.sha512(b"conn %d" % i).digest()[:size], aik[:size])


def _batch(bindings: list[Binding]) -> tuple[bytes, list[CMW]]:
    root, paths = merkle.inclusion_proofs([b.binding for b in bindings])
    cmws: list[CMW] = [
        batched_cmw(EVIDENCE, InclusionProof(len(bindings), i, tuple(path)))
        for i, path in enumerate(paths)
    ]
    return root, cmws


def _report_data(root: bytes, aik: bytes) -> bytes:
    return hashlib.sha512(root + aik).digest()


# --- the proof codec --------------------------------------------------------------------------


def test_proof_round_trips_and_is_deterministic_cbor() -> None:
    import cbor2

    proof = InclusionProof(300, 299, (b"\x01" * 64, b"\x02" * 64))
    encoded = proof.encode()
    assert encoded == cbor2.dumps([300, 299, [b"\x01" * 64, b"\x02" * 64]])
    assert InclusionProof.decode(encoded) == proof
    assert InclusionProof(1, 0, ()).encode() == bytes.fromhex("830100 80".replace(" ", ""))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "truncated"),
        (bytes.fromhex("82 01 00".replace(" ", "")), "exactly 3"),
        (bytes.fromhex("84 01 00 80 00".replace(" ", "")), "exactly 3"),
        (bytes.fromhex("9f 01 00 80 ff".replace(" ", "")), "indefinite"),
        (bytes.fromhex("83 20 00 80".replace(" ", "")), "unsigned"),  # tree_size -1
        (bytes.fromhex("83 01 f5 80".replace(" ", "")), "unsigned"),  # leaf_index true
        (bytes.fromhex("83 18 01 00 80".replace(" ", "")), "shortest"),  # 1 as 0x1801
        (bytes.fromhex("83 01 00 a0".replace(" ", "")), "not an array"),
        (bytes.fromhex("83 01 00 81 40".replace(" ", "")), "0 bytes"),
        (bytes.fromhex("83 01 00 81 41 00".replace(" ", "")), "1 bytes"),
        (bytes.fromhex("83 01 00 81 60".replace(" ", "")), "byte string"),
        (bytes.fromhex("83 02 00 81 58 40".replace(" ", "")) + b"\0" * 63, "truncated"),
        (bytes.fromhex("83 01 00 80 00".replace(" ", "")), "after"),
        (bytes.fromhex("83 01 00 98 40".replace(" ", "")), "at most 63"),
        (bytes.fromhex("83 1b ff ff ff ff ff ff ff ff 00 80".replace(" ", "")), None),
        (bytes.fromhex("83 1c".replace(" ", "")), "reserved"),
        (bytes.fromhex("83 01".replace(" ", "")), "truncated"),
        (bytes.fromhex("83 19 01".replace(" ", "")), "truncated"),
    ],
)
def test_malformed_proofs_are_rejected(data: bytes, match: str | None) -> None:
    if match is None:  # well-formed but absurd: the tree check rejects it
        proof = InclusionProof.decode(data)
        with pytest.raises(MerkleProofError):
            proof.root(b"x" * 32)
        return
    with pytest.raises(BatchProofError, match=match):
        InclusionProof.decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_proof_decoder_raises_only_its_error(data: bytes) -> None:
    try:
        proof = InclusionProof.decode(data)
    except BatchProofError:
        return
    assert proof.encode() == data  # whatever it accepts is the one deterministic encoding


def test_batch_errors_close_with_binding_mismatch() -> None:
    from attquic.errors import CloseCode, close_code_for

    for error in (BatchProofError("x"), MerkleProofError("x")):
        assert close_code_for(error) is CloseCode.BINDING_MISMATCH


# --- the batched CMW and the relying party's check ---------------------------------------------


def test_batched_cmw_survives_the_cbor_codec() -> None:
    _, cmws = _batch([_binding(i) for i in range(3)])
    assert decode(encode_cbor(cmws[1])) == cmws[1]


def test_unbatched_cmw_passes_through() -> None:
    binding = _binding(0)
    assert resolve_batched(EVIDENCE, binding, accepted=True) == (EVIDENCE, binding, 1)
    other = CMWCollection({"evidence": EVIDENCE})
    assert resolve_batched(other, binding, accepted=False) == (other, binding, 1)


def test_every_member_resolves_to_the_root_and_its_key() -> None:
    bindings = [_binding(i) for i in range(7)]
    root, cmws = _batch(bindings)
    for binding, cmw in zip(bindings, cmws, strict=True):
        evidence, nonce, size = resolve_batched(cmw, binding, accepted=True)
        assert (evidence, size) == (EVIDENCE, 7)
        assert nonce == Binding("sha256", root, binding.aik_pub_hash)
        assert nonce.matches_report_data(_report_data(root, binding.aik_pub_hash))
        assert nonce.matches_nonce(root)


def test_batched_evidence_to_a_peer_that_did_not_accept_it() -> None:
    bindings = [_binding(i) for i in range(2)]
    _, cmws = _batch(bindings)
    with pytest.raises(BindingMismatch, match="did not accept"):
        resolve_batched(cmws[0], bindings[0], accepted=False)


def test_proof_for_another_connections_leaf_leads_elsewhere() -> None:
    bindings = [_binding(i) for i in range(5)]
    root, cmws = _batch(bindings)
    _, nonce, _ = resolve_batched(cmws[2], bindings[3], accepted=True)  # 3 uses 2's proof
    assert nonce.binding != root
    assert not nonce.matches_report_data(_report_data(root, bindings[3].aik_pub_hash))


def _with_proof(proof: InclusionProof) -> CMW:
    return batched_cmw(EVIDENCE, proof)


def test_tampered_path_index_and_size() -> None:
    bindings = [_binding(i) for i in range(6)]
    root, cmws = _batch(bindings)
    _, good = split_batched(cmws[4]) or (None, None)
    assert good is not None
    flipped = bytearray(good.path[0])
    flipped[0] ^= 1
    variants = [
        InclusionProof(6, 4, (bytes(flipped), *good.path[1:])),  # tampered element
        InclusionProof(6, 5, good.path),  # a sibling's index, same path length
        InclusionProof(6, 6, good.path),  # index out of range
        InclusionProof(6, 4, good.path[:-1]),  # path too short for the size
        InclusionProof(6, 4, (*good.path, good.path[0])),  # path too long
        *(InclusionProof(size, 4, good.path) for size in (5, 7, 8, 9, 12, 1 << 20)),
        InclusionProof(6, 4, good.path[::-1]),
    ]
    outcomes = []
    for proof in variants:
        try:
            _, nonce, _ = resolve_batched(_with_proof(proof), bindings[4], accepted=True)
        except MerkleProofError:
            outcomes.append("rejected")
        else:
            assert nonce.binding != root, proof
            outcomes.append("other root")
    assert outcomes[:5] == ["other root", "other root", "rejected", "rejected", "rejected"]


@pytest.mark.parametrize(
    "cmw",
    [
        CMWCollection({"batch-proof": CMWRecord(BATCH_PROOF_MEDIA_TYPE, b"\x83\x01\x00\x80")}),
        CMWCollection(
            {
                "evidence": EVIDENCE,
                "batch-proof": CMWRecord(BATCH_PROOF_MEDIA_TYPE, b"\x83\x01\x00\x80"),
                "extra": EVIDENCE,
            }
        ),
        CMWCollection(
            {
                "evidence": EVIDENCE,
                "batch-proof": CMWRecord("application/cbor", b"\x83\x01\x00\x80"),
            }
        ),
        CMWCollection(
            {"evidence": EVIDENCE, "batch-proof": CMWRecord(BATCH_PROOF_MEDIA_TYPE, b"\x83\x01")}
        ),
        CMWCollection(
            {
                "evidence": EVIDENCE,
                "batch-proof": CMWRecord(BATCH_PROOF_MEDIA_TYPE, b"\x83\x01\x00\x80", 4),
            }
        ),
        CMWCollection(
            {
                "evidence": EVIDENCE,
                "batch-proof": CMWCollection(
                    {"p": CMWRecord(BATCH_PROOF_MEDIA_TYPE, b"\x83\x01\x00\x80")}
                ),
            }
        ),
        CMWCollection(
            {
                "evidence": EVIDENCE,
                "batch-proof": CMWRecord(BATCH_PROOF_MEDIA_TYPE, b"\x83\x01\x00\x80"),
            },
            cmwc_t="tag:example.com,2026:x",
        ),
    ],
)
def test_malformed_batched_cmws_are_binding_mismatches(cmw: CMW) -> None:
    with pytest.raises(BatchProofError):
        resolve_batched(cmw, _binding(0), accepted=True)


def test_a_batch_mixing_keys_or_hashes_fails_for_the_odd_member() -> None:
    """An attester that put another key's (or hash's) binding in the tree: the quote commits to
    the root with ITS key, so the odd member's own REPORTDATA never matches."""
    bindings = [_binding(0), _binding(1, aik=b"z" * 48), _binding(2, hash_name="sha384")]
    root, cmws = _batch(bindings)
    quoted = _report_data(root, bindings[0].aik_pub_hash)  # the quote is for member 0's key
    results = [resolve_batched(c, b, accepted=True)[1] for c, b in zip(cmws, bindings, strict=True)]
    assert results[0].matches_report_data(quoted)
    assert not results[1].matches_report_data(quoted)
    assert not results[2].matches_report_data(quoted)


@settings(max_examples=50, deadline=None)
@given(
    seeds=st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=70, unique=True),
    outsider=st.binary(min_size=9, max_size=12),
    data=st.data(),
)
def test_every_member_verifies_and_no_non_member_does(
    seeds: list[bytes], outsider: bytes, data: st.DataObject
) -> None:
    aik = hashlib.sha256(b"aik").digest()
    bindings = [Binding("sha256", hashlib.sha256(s).digest(), aik) for s in seeds]
    root, cmws = _batch(bindings)
    quoted = _report_data(root, aik)
    for binding, cmw in zip(bindings, cmws, strict=True):
        assert resolve_batched(cmw, binding, accepted=True)[1].matches_report_data(quoted)
    stranger = Binding("sha256", hashlib.sha256(outsider).digest(), aik)
    for cmw in [data.draw(st.sampled_from(cmws))]:
        try:
            nonce = resolve_batched(cmw, stranger, accepted=True)[1]
        except MerkleProofError:
            continue
        assert not nonce.matches_report_data(quoted)


# --- the published test vector ------------------------------------------------------------------


def _doc_vector() -> dict[str, list[str]]:
    text = DOCS.read_text()
    block = re.search(r"<!-- batch-vector -->\s*```text\n(.*?)```", text, re.S)
    assert block is not None, "docs/protocol.md lost its batch test vector"
    vector: dict[str, list[str]] = {}
    key = ""
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            key, _, rest = line.partition(":")
            vector[key.strip()] = [rest.strip()] if rest.strip() else []
        else:
            vector[key].append(line.strip())
    return vector


def _join(lines: list[str]) -> bytes:
    return bytes.fromhex("".join(lines))


def test_docs_vector() -> None:
    vector = _doc_vector()
    n = 5
    aik = hashlib.sha256(b"attquic batch vector aik").digest()
    leaves = [hashlib.sha256(b"attquic batch vector leaf %d" % i).digest() for i in range(n)]
    assert _join(vector["aik_pub_hash"]) == aik
    for i in range(n):
        assert _join(vector[f"leaf[{i}]"]) == leaves[i]
    root, paths = merkle.inclusion_proofs(leaves)
    assert _join(vector["root"]) == root
    assert _join(vector["report_data"]) == _report_data(root, aik)
    for i in range(n):
        proof = InclusionProof(n, i, tuple(paths[i]))
        encoded = _join(vector[f"proof[{i}]"])
        assert encoded == proof.encode()
        assert InclusionProof.decode(encoded).root(leaves[i]) == root
    assert _join(vector["batch-proof record[3]"]) == encode_cbor(
        CMWRecord(BATCH_PROOF_MEDIA_TYPE, InclusionProof(n, 3, tuple(paths[3])).encode())
    )


# --- the batcher --------------------------------------------------------------------------------


class _Source:
    """A quote source that takes ``delay`` per quote and records the nonces it quoted."""

    def __init__(self, delay: float = 0.01, fail: int = 0, fail_after: int = 0) -> None:
        self.delay = delay
        self.fail = fail
        self.fail_after = fail_after
        """Quotes that succeed before the ``fail`` failing ones."""
        self.nonces: list[Binding] = []
        self.running = 0
        self.max_running = 0

    async def attest(self, binding: Binding) -> CMW:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delay)
            self.nonces.append(binding)
            if self.fail and len(self.nonces) > self.fail_after:
                self.fail -= 1
                raise OSError("quote service down")
            return CMWRecord("application/x-test-evidence", binding.report_data, 4)
        finally:
            self.running -= 1


def _check(cmw: CMW, binding: Binding) -> int:
    evidence, nonce, size = resolve_batched(cmw, binding, accepted=True)
    assert isinstance(evidence, CMWRecord)
    assert nonce.matches_report_data(evidence.value)
    return size


@pytest.mark.anyio
async def test_a_lone_request_is_quoted_at_once_and_answered_unbatched() -> None:
    """A batch of one needs no tree: the quote commits to the request's own binding (REPORTDATA
    as without batching) and the answer is the plain evidence, with no proof to check."""
    source = _Source(delay=0)
    batcher = EvidenceBatcher(source.attest)
    binding = _binding(0)
    cmw = await asyncio.wait_for(batcher.attest(binding), 5)
    assert split_batched(cmw) is None
    assert _check(cmw, binding) == 1
    assert source.nonces == [binding]
    assert list(batcher.batch_sizes) == [1]


@pytest.mark.anyio
async def test_requests_queued_during_a_quote_share_the_next_one() -> None:
    source = _Source()
    batcher = EvidenceBatcher(source.attest, max_batch_size=64)
    bindings = [_binding(i) for i in range(41)]
    first = asyncio.ensure_future(batcher.attest(bindings[0]))
    await asyncio.sleep(0)  # the first request starts a quote at once
    rest = [asyncio.ensure_future(batcher.attest(b)) for b in bindings[1:]]
    cmws = await asyncio.gather(first, *rest)
    assert [_check(c, b) for c, b in zip(cmws, bindings, strict=True)] == [1] + [40] * 40
    assert len(source.nonces) == 2
    assert source.max_running == 1
    assert list(batcher.batch_sizes) == [1, 40]


@pytest.mark.anyio
async def test_batches_are_bounded_and_grouped_by_key_and_hash() -> None:
    source = _Source()
    batcher = EvidenceBatcher(source.attest, max_batch_size=4)
    other_key = [_binding(100 + i, aik=b"z" * 48) for i in range(3)]
    sha384 = [_binding(200 + i, hash_name="sha384") for i in range(2)]
    plain = [_binding(i) for i in range(6)]
    blocker = asyncio.ensure_future(batcher.attest(_binding(999)))
    await asyncio.sleep(0)
    everyone = [plain[0], other_key[0], sha384[0], *plain[1:], *other_key[1:], sha384[1]]
    cmws = await asyncio.gather(blocker, *(batcher.attest(b) for b in everyone))
    sizes = [_check(c, b) for c, b in zip(cmws[1:], everyone, strict=True)]
    assert sizes == [4, 3, 2, 4, 4, 4, 2, 2, 3, 3, 2]
    for nonce in source.nonces:  # each quote: one key and one hash
        assert nonce.aik_pub_hash in (b"k" * 32, b"z" * 32, (b"k" * 48))
    assert list(batcher.batch_sizes) == [1, 4, 3, 2, 2]


@pytest.mark.anyio
async def test_a_source_failure_fails_that_batch_only() -> None:
    source = _Source(fail=1, fail_after=1)
    batcher = EvidenceBatcher(source.attest)
    first = asyncio.ensure_future(batcher.attest(_binding(20)))
    await asyncio.sleep(0)  # quoted at once, alone
    doomed = [asyncio.ensure_future(batcher.attest(_binding(i))) for i in range(3)]
    assert _check(await first, _binding(20)) == 1  # the three queued meanwhile: the next batch
    later = asyncio.ensure_future(batcher.attest(_binding(10)))  # while that batch is quoted
    results = await asyncio.gather(*doomed, later, return_exceptions=True)
    assert all(isinstance(r, AttesterUnavailable) for r in results[:3])
    assert split_batched(results[3]) is None  # alone in its batch: unbatched
    assert _check(results[3], _binding(10)) == 1
    assert list(batcher.batch_sizes) == [1, 1]  # only the successful batches are counted


@pytest.mark.anyio
async def test_a_lone_request_is_quoted_in_its_own_task_and_then_the_queue_is_served() -> None:
    """No worker task for a lone request; requests that queue during its quote get the next
    batch, even when the lone request's connection closes while its quote is made."""
    source = _Source()
    batcher = EvidenceBatcher(source.attest)
    await batcher.attest(_binding(0))
    assert batcher._worker is None  # quoted by the caller: no task was started
    lone = asyncio.ensure_future(batcher.attest(_binding(1)))
    await asyncio.sleep(0)  # its quote is being made
    queued = [asyncio.ensure_future(batcher.attest(_binding(i))) for i in range(2, 5)]
    await asyncio.sleep(0)
    assert batcher.queued == 3
    lone.cancel()  # its connection closed
    with pytest.raises(asyncio.CancelledError):
        await lone
    cmws = await asyncio.wait_for(asyncio.gather(*queued), 5)
    assert [_check(cmw, _binding(i)) for i, cmw in enumerate(cmws, 2)] == [3, 3, 3]
    assert list(batcher.batch_sizes) == [1, 3]  # the abandoned quote is not counted
    assert await asyncio.wait_for(batcher.attest(_binding(9)), 5) is not None  # idle again


@pytest.mark.anyio
async def test_a_cancelled_request_leaves_the_queue_and_the_batch() -> None:
    source = _Source()
    batcher = EvidenceBatcher(source.attest)
    first = asyncio.ensure_future(batcher.attest(_binding(0)))
    await asyncio.sleep(0)
    queued = [asyncio.ensure_future(batcher.attest(_binding(i))) for i in range(1, 4)]
    await asyncio.sleep(0)
    assert batcher.queued == 3
    queued[1].cancel()
    await asyncio.sleep(0)
    assert batcher.queued == 2
    cmws = await asyncio.gather(first, queued[0], queued[2])
    assert _check(cmws[1], _binding(1)) == 2
    assert _check(cmws[2], _binding(3)) == 2
    # cancelled while its own batch's quote is in flight: the others still get theirs
    blocker = asyncio.ensure_future(batcher.attest(_binding(30)))
    await asyncio.sleep(0)
    inflight = [asyncio.ensure_future(batcher.attest(_binding(i))) for i in range(20, 23)]
    await blocker  # the worker has started the quote for the three
    assert batcher.queued == 0
    inflight[0].cancel()
    done = await asyncio.gather(*inflight, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError)
    assert _check(done[1], _binding(21)) == 3  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_queue_is_bounded() -> None:
    source = _Source()
    batcher = EvidenceBatcher(source.attest, max_queue=3)
    blocker = asyncio.ensure_future(batcher.attest(_binding(99)))
    await asyncio.sleep(0)  # its quote is in flight, the queue is empty
    waiting = [asyncio.ensure_future(batcher.attest(_binding(i))) for i in range(3)]
    await asyncio.sleep(0)
    assert batcher.queued == 3
    with pytest.raises(AttesterUnavailable, match="already wait"):
        await batcher.attest(_binding(9))
    await asyncio.gather(blocker, *waiting)


def test_batcher_bounds_are_validated() -> None:
    with pytest.raises(ConfigurationError):
        EvidenceBatcher(_Source().attest, max_batch_size=0)
    with pytest.raises(ConfigurationError):
        EvidenceBatcher(_Source().attest, max_queue=0)


@pytest.mark.anyio
async def test_any_attester_can_be_batched_and_builtins_batch_by_default() -> None:
    from attquic.tdx.configfs import ConfigfsTsmAttester
    from attquic.tdx.simulated import SimulatedTdxAttester

    wrapped = BatchedAttester(_Source())
    assert isinstance(wrapped, BatchingAttester)
    assert isinstance(await wrapped.attest(_binding(0)), CMWRecord)
    assert _check(await wrapped.attest_batched(_binding(1)), _binding(1)) == 1
    assert SimulatedTdxAttester().batcher is not None
    assert SimulatedTdxAttester(batching=False).batcher is None
    assert isinstance(ConfigfsTsmAttester(), BatchingAttester)
    unbatched = await SimulatedTdxAttester(batching=False).attest_batched(_binding(2))
    assert isinstance(unbatched, CMWRecord)


def test_module_constants() -> None:
    assert batching.DEFAULT_MAX_BATCH_SIZE == 64
    assert BATCH_PROOF_MEDIA_TYPE == "application/vnd.attquic.merkle-proof+cbor"


# --- the quote cost model -----------------------------------------------------------------------


def test_the_quoting_service_serves_one_quote_at_a_time() -> None:
    from attquic.tdx.simulated import _QuotingService

    service = _QuotingService()
    ends = [service.reserve(0.039) for _ in range(5)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(ends)]
    assert all(gap == pytest.approx(0.039) for gap in gaps)  # back to back, never overlapping


@pytest.mark.anyio
async def test_quote_latency_is_waited_without_blocking_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from attquic.tdx import simulated

    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(simulated.anyio, "sleep", fake_sleep)
    monkeypatch.setattr(simulated, "_QUOTING_SERVICE", simulated._QuotingService())
    attester = simulated.SimulatedTdxAttester(quote_latency=0.039)
    assert attester.quote_latency == 0.039
    await asyncio.gather(*(attester.attest(_binding(i)) for i in range(3)))
    assert len(waits) == 3
    assert sorted(waits)[-1] > sorted(waits)[0] + 0.05  # the third waits for the first two
    instant = simulated.SimulatedTdxAttester()
    await instant.attest(_binding(9))
    assert len(waits) == 3  # no latency: no wait at all
    with pytest.raises(ConfigurationError):
        simulated.SimulatedTdxAttester(quote_latency=-1)


class _InstantSource:
    """A quote source that answers without suspending (the simulated attester, no latency)."""

    def __init__(self) -> None:
        self.quotes = 0

    async def attest(self, binding: Binding) -> CMW:
        self.quotes += 1
        return CMWRecord("application/x-test-evidence", binding.report_data, 4)


@pytest.mark.anyio
async def test_a_lone_request_to_an_instant_source_never_suspends() -> None:
    """The worker starts eagerly: the quote is made and the request answered before attest()
    first yields, so the adapter's transmit carries the authenticator (no extra iteration)."""
    batcher = EvidenceBatcher(_InstantSource().attest)
    request = batcher.attest(_binding(1))
    with pytest.raises(StopIteration) as finished:
        request.send(None)
    assert _check(finished.value.value, _binding(1)) == 1


@pytest.mark.anyio
async def test_requests_right_after_an_inline_batch_are_served() -> None:
    """A worker that finished inside its eager first step is marked done only one iteration
    later; requests made in between must start a new worker, not wait for the old one."""
    source = _InstantSource()
    batcher = EvidenceBatcher(source.attest)
    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[CMW]] = []
    both_started = loop.create_future()

    def start_two() -> None:
        for i in range(2):
            started.append(eager_task(loop, batcher.attest(_binding(i))))
        both_started.set_result(None)

    loop.call_soon(start_two)
    await both_started
    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        cmws = await asyncio.gather(*started)
    assert [_check(cmw, _binding(i)) for i, cmw in enumerate(cmws)] == [1, 1]
    assert source.quotes == 2
