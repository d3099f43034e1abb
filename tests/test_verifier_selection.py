"""The verifiers' binding comparisons and record selection, each reached by input that is valid
in every other respect, so that only the check under test can reject it.

A mutation review found that these checks could be weakened without any test noticing: the
binding tests flipped only the first byte of REPORTDATA or of the nonce (comparing a prefix
passed them), and the "exactly one record" and ``ind`` tests used garbage tokens that failed
later anyway. Here the quote is the real P1 sample at a time its collateral is valid, and the
EARs are validly signed for the right nonce.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from data_paths import TDX_SAMPLES
from test_ear import KEY, NONCE, NOW, make_claims, verifier

from attquic import profile
from attquic.cmw import CMWCollection, CMWRecord
from attquic.ear import EarChannelVerifier, issue_ear
from attquic.errors import (
    BindingMismatch,
    CloseCode,
    EvidenceInvalid,
    PolicyRejected,
    close_code_for,
)
from attquic.keyschedule import Binding
from attquic.tdx import Collateral, StaticCollateral, TdxVerifier, check_quote, parse_quote
from attquic.tdx import verify_quote as verify_tdx_quote

P1 = (TDX_SAMPLES / "phala-dcap-qvl/tdx_quote").read_bytes()
P1_COLLATERAL = TDX_SAMPLES / "phala-dcap-qvl/tdx_quote_collateral.json"
P1_NOW = 1752919234
P1_REPORT_DATA = parse_quote(P1).report_data
OFFSETS = [0, 31, 32, 63]  # first, either side of the middle, last


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def _tdx_record(quote: bytes = P1, ind: int | None = profile.IND_EVIDENCE) -> CMWRecord:
    return CMWRecord(profile.TDX_QUOTE_MEDIA_TYPE, quote, ind)


def _p1_binding(report_data: bytes = P1_REPORT_DATA) -> Any:
    """A stand-in binding: no exporter and key hash give P1's REPORTDATA, so the value is set."""
    return SimpleNamespace(report_data=report_data)


@pytest.fixture(scope="module")
def tdx_verifier() -> TdxVerifier:
    return TdxVerifier(StaticCollateral(Collateral.from_file(P1_COLLATERAL)))


def _assert_binding_mismatch(error: BaseException | None) -> None:
    assert isinstance(error, BindingMismatch), error
    assert close_code_for(error) is CloseCode.BINDING_MISMATCH


# --- REPORTDATA: every byte counts --------------------------------------------------------------


def test_p1_is_accepted_with_its_own_report_data() -> None:
    collateral = Collateral.from_file(P1_COLLATERAL)
    verify_tdx_quote(P1, collateral, now=P1_NOW, expected_report_data=P1_REPORT_DATA)
    assert len(P1_REPORT_DATA) == 64


@pytest.mark.parametrize("offset", OFFSETS)
def test_report_data_differing_in_one_byte_is_a_binding_mismatch(offset: int) -> None:
    collateral = Collateral.from_file(P1_COLLATERAL)
    wrong = _flip(P1_REPORT_DATA, offset)
    with pytest.raises(BindingMismatch) as info:
        verify_tdx_quote(P1, collateral, now=P1_NOW, expected_report_data=wrong)
    _assert_binding_mismatch(info.value)
    verdict = check_quote(P1, collateral, now=P1_NOW, expected_report_data=wrong)
    assert not verdict.accepted
    _assert_binding_mismatch(verdict.error)


@pytest.mark.anyio
@pytest.mark.parametrize("offset", OFFSETS)
async def test_tdx_verifier_compares_the_whole_report_data(
    tdx_verifier: TdxVerifier, offset: int
) -> None:
    """Through the channel's Verifier, after the same quote was accepted once for its own
    binding (so that no cached verdict may stand in for the binding check)."""
    accepted = await tdx_verifier.verify(_tdx_record(), _p1_binding(), now=P1_NOW)
    assert accepted.report_data == P1_REPORT_DATA
    with pytest.raises(BindingMismatch) as info:
        await tdx_verifier.verify(
            _tdx_record(), _p1_binding(_flip(P1_REPORT_DATA, offset)), now=P1_NOW
        )
    _assert_binding_mismatch(info.value)


# --- which TDX record ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_two_valid_tdx_records_are_evidence_invalid(tdx_verifier: TdxVerifier) -> None:
    """Two records, each a genuine quote bound to this connection: still not one."""
    collection = CMWCollection({"a": _tdx_record(), "b": _tdx_record()})
    with pytest.raises(EvidenceInvalid, match="2 TDX quote record") as info:
        await tdx_verifier.verify(collection, _p1_binding(), now=P1_NOW)
    assert close_code_for(info.value) is CloseCode.EVIDENCE_INVALID
    nested = CMWCollection({"a": _tdx_record(), "n": CMWCollection({"b": _tdx_record()})})
    with pytest.raises(EvidenceInvalid, match="2 TDX quote record"):
        await tdx_verifier.verify(nested, _p1_binding(), now=P1_NOW)
    # one of them alone is accepted: the count is the reason
    alone = CMWCollection({"a": _tdx_record(), "other": CMWRecord("text/plain", b"x")})
    await tdx_verifier.verify(alone, _p1_binding(), now=P1_NOW)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "ind", [profile.IND_ATTESTATION_RESULTS, profile.IND_REFERENCE_VALUES], ids=["results", "rv"]
)
async def test_tdx_record_not_marked_as_evidence(tdx_verifier: TdxVerifier, ind: int) -> None:
    with pytest.raises(EvidenceInvalid, match="not marked as evidence") as info:
        await tdx_verifier.verify(_tdx_record(ind=ind), _p1_binding(), now=P1_NOW)
    assert close_code_for(info.value) is CloseCode.EVIDENCE_INVALID


# --- EAR: the nonce, the record count, the indicator --------------------------------------------


def _ear(nonce: bytes = NONCE) -> bytes:
    return issue_ear(make_claims(nonce=nonce), KEY).encode()


def _ear_record(token: bytes, ind: int | None = profile.IND_ATTESTATION_RESULTS) -> CMWRecord:
    return CMWRecord(profile.EAR_JWT_MEDIA_TYPE, token, ind)


def _binding(nonce: bytes = NONCE) -> Binding:
    return Binding(hash_name="sha256", binding=nonce, aik_pub_hash=bytes(32))


@pytest.mark.parametrize("offset", [0, 15, 16, 31])
def test_ear_nonce_differing_in_one_byte_is_a_binding_mismatch(offset: int) -> None:
    token = _ear().decode()
    assert verifier().verify(token, now=NOW, expected_nonce=NONCE)
    with pytest.raises(BindingMismatch) as info:
        verifier().verify(token, now=NOW, expected_nonce=_flip(NONCE, offset))
    _assert_binding_mismatch(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("offset", [0, 31])
async def test_ear_channel_verifier_compares_the_whole_binding(offset: int) -> None:
    channel = EarChannelVerifier(verifier())
    assert await channel.verify(_ear_record(_ear()), _binding(), now=NOW)
    with pytest.raises(BindingMismatch) as info:
        await channel.verify(_ear_record(_ear()), _binding(_flip(NONCE, offset)), now=NOW)
    _assert_binding_mismatch(info.value)


@pytest.mark.anyio
async def test_two_valid_ears_are_evidence_invalid() -> None:
    """Two EARs, both validly signed for this connection's nonce: still not one."""
    channel = EarChannelVerifier(verifier())
    two = CMWCollection({"a": _ear_record(_ear()), "b": _ear_record(_ear())})
    with pytest.raises(EvidenceInvalid, match="exactly one EAR") as info:
        await channel.verify(two, _binding(), now=NOW)
    assert close_code_for(info.value) is CloseCode.EVIDENCE_INVALID
    one = CMWCollection({"a": _ear_record(_ear()), "other": CMWRecord("text/plain", b"x")})
    assert await channel.verify(one, _binding(), now=NOW)


@pytest.mark.anyio
@pytest.mark.parametrize("in_collection", [False, True], ids=["record", "collection"])
async def test_ear_record_marked_as_evidence_is_evidence_invalid(in_collection: bool) -> None:
    """A validly signed EAR for the right nonce whose ``ind`` says evidence."""
    channel = EarChannelVerifier(verifier())
    record = _ear_record(_ear(), ind=profile.IND_EVIDENCE)
    cmw = CMWCollection({"ear": record}) if in_collection else record
    with pytest.raises(EvidenceInvalid, match="ind") as info:
        await channel.verify(cmw, _binding(), now=NOW)
    assert close_code_for(info.value) is CloseCode.EVIDENCE_INVALID


def _nested(record: CMWRecord, depth: int) -> CMWCollection:
    cmw: CMWRecord | CMWCollection = record
    for level in range(depth):
        cmw = CMWCollection({f"level{level}": cmw})
    assert isinstance(cmw, CMWCollection)
    return cmw


@pytest.mark.anyio
async def test_a_tdx_record_hidden_deep_in_the_cmw_is_not_skipped(
    tdx_verifier: TdxVerifier,
) -> None:
    """A genuine, bound quote at the top and a second record nested deeper than the verifier
    searches: refused (EvidenceInvalid), never accepted on the first record alone."""
    await tdx_verifier.verify(_nested(_tdx_record(), 8), _p1_binding(), now=P1_NOW)
    hidden = CMWCollection({"tdx": _tdx_record(), "deep": _nested(_tdx_record(), 10)})
    with pytest.raises(EvidenceInvalid, match="nested deeper") as info:
        await tdx_verifier.verify(hidden, _p1_binding(), now=P1_NOW)
    assert close_code_for(info.value) is CloseCode.EVIDENCE_INVALID
    with pytest.raises(EvidenceInvalid):
        await tdx_verifier.verify(_nested(_tdx_record(), 10), _p1_binding(), now=P1_NOW)


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["a quote as text", None, 42])
async def test_a_tdx_record_whose_value_is_not_bytes(
    tdx_verifier: TdxVerifier, value: object
) -> None:
    """TdxVerifier takes any object shaped like a CMW record; a value that is not bytes is
    EvidenceInvalid, not a TypeError escaping the verifier."""
    record = SimpleNamespace(
        type=profile.TDX_QUOTE_MEDIA_TYPE, value=value, ind=profile.IND_EVIDENCE
    )
    with pytest.raises(EvidenceInvalid, match="not bytes"):
        await tdx_verifier.verify(record, _p1_binding(), now=P1_NOW)


N3 = TDX_SAMPLES / "trustee/tdx_quote_4.dat"
N3_COLLATERAL = TDX_SAMPLES / "go-tdx-guest/collateral_v4_assembled.json"
N3_NOW = 1688801098


@pytest.mark.parametrize("offset", [0, 63])
def test_binding_is_checked_before_dcap_qvls_attribute_refusal(offset: int) -> None:
    """N3 is a genuine debug TD: dcap-qvl refuses it after every signature and TCB check, which
    attquic reports as PolicyRejected. With another connection's REPORTDATA it is first of all
    not bound to this connection: BindingMismatch, as for any other quote."""
    collateral = Collateral.from_file(N3_COLLATERAL)
    quote = N3.read_bytes()
    report_data = parse_quote(quote).report_data
    with pytest.raises(PolicyRejected, match="debug"):
        verify_tdx_quote(quote, collateral, now=N3_NOW, expected_report_data=report_data)
    verdict = check_quote(
        quote, collateral, now=N3_NOW, expected_report_data=_flip(report_data, offset)
    )
    _assert_binding_mismatch(verdict.error)
