"""The verifier service in-process (injected clock and appraiser), its client, the evidence
forms, the TDX appraiser on simulated quotes, and the passport attester."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attquic import profile
from attquic.attestation import Attester
from attquic.cmw import CMWRecord
from attquic.ear import (
    IETF_EAR_MEDIA_TYPE,
    IETF_PROFILE,
    VERAISON_EAR_MEDIA_TYPE,
    VERAISON_PROFILE,
    Appraisal,
    EarChannelVerifier,
    EarVerifier,
    Status,
    TrustVector,
    generate_signing_key,
)
from attquic.errors import (
    AttesterUnavailable,
    BindingMismatch,
    CollateralError,
    ConfigurationError,
    EvidenceInvalid,
    VerifierUnavailable,
)
from attquic.keyschedule import Binding
from attquic.tdx.collateral import Collateral, StaticCollateral
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.quote import TdxQuote, parse_quote
from attquic.tdx.simulated import (
    OUT_OF_DATE_ADVISORIES,
    SimulatedTdxAttester,
    SimulatedTdxHierarchy,
    SimulationKnobs,
)
from attquic.verifier_service import (
    ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE,
    DISCOVERY_MEDIA_TYPE,
    EVIDENCE_MEDIA_TYPES,
    NEW_SESSION_PATH,
    PROBLEM_MEDIA_TYPE,
    SESSION_MEDIA_TYPE,
    EvidenceFormatError,
    PassportAttester,
    TdxEvidenceAppraiser,
    VerifierClient,
    VerifierService,
    VerifierServiceConfig,
    decode_evidence,
    encode_attquic_evidence,
)

NOW = 1_800_000_000.0
NONCE = bytes(range(1, 33))
KEY = generate_signing_key()

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FakeClock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeAppraiser:
    """Records calls; returns ``status`` or raises ``error``."""

    status: Status = Status.AFFIRMING
    error: BaseException | None = None
    calls: list[tuple[str, bytes, bytes, float]] = field(default_factory=list)
    media_types: tuple[str, ...] = EVIDENCE_MEDIA_TYPES

    async def appraise(
        self, media_type: str, evidence: bytes, nonce: bytes, *, now: float
    ) -> Appraisal:
        self.calls.append((media_type, evidence, nonce, now))
        if self.error is not None:
            raise self.error
        return Appraisal(self.status, TrustVector(hardware=2), ("policy:test",))


@dataclass
class Running:
    url: str
    clock: FakeClock
    appraiser: FakeAppraiser
    http: httpx.AsyncClient

    async def new_session(self, nonce: bytes = NONCE) -> str:
        response = await self.http.post(f"{self.url}{NEW_SESSION_PATH}?nonce={b64url(nonce)}")
        assert response.status_code == 201
        return self.url + response.headers["Location"]


@pytest.fixture
async def service() -> AsyncIterator[Running]:
    clock, appraiser = FakeClock(), FakeAppraiser()
    config = VerifierServiceConfig(
        signing_key=KEY,
        appraiser=appraiser,
        clock=clock,
        session_ttl=100,
        max_evidence_size=1000,
        max_sessions=5,
    )
    async with VerifierService(config) as svc, httpx.AsyncClient() as http:
        url = await svc.start("127.0.0.1", 0)
        yield Running(url, clock, appraiser, http)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# --- discovery and the happy path ------------------------------------------------------------


@pytest.mark.anyio
async def test_discovery(service: Running) -> None:
    response = await service.http.get(f"{service.url}/.well-known/veraison/verification")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(DISCOVERY_MEDIA_TYPE)
    body = response.json()
    key = body["ear-verification-key"]
    assert key["alg"] == "ES256" and key["kty"] == "EC" and "d" not in key
    assert body["media-types"] == list(EVIDENCE_MEDIA_TYPES)
    assert body["state"] == "READY"
    assert body["api-endpoints"] == {"newChallengeResponseSession": NEW_SESSION_PATH}


@pytest.mark.anyio
async def test_session_flow_issues_an_ear_for_the_nonce(service: Running) -> None:
    response = await service.http.post(
        f"{service.url}{NEW_SESSION_PATH}", params={"nonce": b64url(NONCE)}
    )
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith(SESSION_MEDIA_TYPE)
    location = response.headers["Location"]
    assert location.startswith("/challenge-response/v1/session/")
    session = response.json()
    assert session["status"] == "waiting"
    assert session["nonce"] == b64url(NONCE)
    assert session["expiry"] == "2027-01-15T08:01:40Z"  # NOW + 100 s
    assert session["accept"] == list(EVIDENCE_MEDIA_TYPES)

    url = service.url + location
    evidence = encode_attquic_evidence(b"quote", bytes(32))
    response = await service.http.post(
        url, content=evidence, headers={"Content-Type": ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE}
    )
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["status"] == "complete"
    assert done["evidence"]["type"] == ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE
    assert base64.b64decode(done["evidence"]["value"]) == evidence
    assert service.appraiser.calls == [(ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE, evidence, NONCE, NOW)]

    result = EarVerifier([KEY]).verify(done["result"], now=NOW, expected_nonce=NONCE)
    assert result.status is Status.AFFIRMING
    assert result.claims.profile == IETF_PROFILE
    assert result.claims.exp == int(NOW) + 300
    assert result.claims.status is Status.AFFIRMING
    assert result.claims.submods["tdx"].policy_ids == ("policy:test",)

    again = await service.http.get(url)
    assert again.status_code == 200 and again.json()["result"] == done["result"]
    assert (await service.http.delete(url)).status_code == 204
    assert_problem(await service.http.get(url), 404)


@pytest.mark.anyio
async def test_contraindicated_appraisal_is_a_result_not_an_error(service: Running) -> None:
    service.appraiser.status = Status.CONTRAINDICATED
    url = await service.new_session()
    response = await service.http.post(
        url, content=b"q", headers={"Content-Type": profile.TDX_QUOTE_MEDIA_TYPE}
    )
    assert response.status_code == 200
    ear = EarVerifier([KEY], required_status="none").decode(response.json()["result"], now=NOW)
    assert ear.submods["tdx"].status is Status.CONTRAINDICATED


@pytest.mark.anyio
async def test_media_type_match_ignores_case_spacing_and_parameter_order(
    service: Running,
) -> None:
    url = await service.new_session()
    content_type = (
        'Application/TDX-Quote;profile="https://trustedcomputinggroup.org/tdx/v1" ;version=1.0'
    )
    response = await service.http.post(url, content=b"q", headers={"Content-Type": content_type})
    assert response.status_code == 200
    assert service.appraiser.calls[0][0] == profile.TDX_QUOTE_MEDIA_TYPE


@pytest.mark.anyio
@pytest.mark.parametrize("query", ["", "?nonceSize=8", "?nonceSize=64"])
async def test_service_chosen_nonces(service: Running, query: str) -> None:
    response = await service.http.post(f"{service.url}{NEW_SESSION_PATH}{query}")
    assert response.status_code == 201
    nonce = base64.urlsafe_b64decode(response.json()["nonce"] + "==")
    assert len(nonce) == (int(query.split("=")[1]) if query else 32)


@pytest.mark.anyio
async def test_padded_nonce_is_accepted(service: Running) -> None:
    padded = base64.urlsafe_b64encode(b"12345678").decode()
    assert padded.endswith("=")
    response = await service.http.post(f"{service.url}{NEW_SESSION_PATH}?nonce={padded}")
    assert response.status_code == 201
    assert response.json()["nonce"] == b64url(b"12345678")


# --- every error ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "query",
    [
        "?nonce=",
        "?nonce=short",  # 3 bytes
        "?nonce=" + b64url(bytes(7)),
        "?nonce=" + b64url(bytes(65)),
        "?nonce=not%20base64url!!",
        "?nonce=AAAAAAAAAAA%2B",  # '+' is not base64url
        "?nonce=AAAAAAAAAAB",  # non-canonical trailing bits
        "?nonce=" + b64url(NONCE) + "&nonce=" + b64url(NONCE),
        "?nonce=" + b64url(NONCE) + "&nonceSize=32",
        "?nonceSize=7",
        "?nonceSize=65",
        "?nonceSize=abc",
        "?nonceSize=%D9%A3%D9%A3",  # Arabic-Indic digits
    ],
)
async def test_malformed_nonce_is_400(service: Running, query: str) -> None:
    assert_problem(await service.http.post(f"{service.url}{NEW_SESSION_PATH}{query}"), 400)


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_unknown_session_is_404(service: Running, method: str) -> None:
    url = f"{service.url}/challenge-response/v1/session/00000000-0000-0000-0000-000000000000"
    response = await service.http.request(
        method, url, content=b"q", headers={"Content-Type": profile.TDX_QUOTE_MEDIA_TYPE}
    )
    assert_problem(response, 404)


@pytest.mark.anyio
async def test_expired_session_is_404(service: Running) -> None:
    url = await service.new_session()
    service.clock.now = NOW + 99
    assert (await service.http.get(url)).status_code == 200
    service.clock.now = NOW + 100
    assert_problem(await service.http.get(url), 404)
    response = await service.http.post(
        url, content=b"q", headers={"Content-Type": profile.TDX_QUOTE_MEDIA_TYPE}
    )
    assert_problem(response, 404)
    assert service.appraiser.calls == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content_type", [None, "application/octet-stream", "application/tdx-quote", "text/plain"]
)
async def test_wrong_media_type_is_415(service: Running, content_type: str | None) -> None:
    url = await service.new_session()
    headers = {"Content-Type": content_type} if content_type else {}
    response = await service.http.post(url, content=b"q", headers=headers)
    assert_problem(response, 415)
    assert ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE in response.headers["Accept"]
    assert service.appraiser.calls == []


@pytest.mark.anyio
async def test_oversized_evidence_is_413(service: Running) -> None:
    url = await service.new_session()
    headers = {"Content-Type": ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE}
    assert_problem(await service.http.post(url, content=bytes(1001), headers=headers), 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the streaming bound
        for _ in range(20):
            yield bytes(100)

    assert_problem(await service.http.post(url, content=chunks(), headers=headers), 413)
    # The session is still usable with evidence of the allowed size.
    response = await service.http.post(url, content=bytes(1000), headers=headers)
    assert response.status_code == 200


@pytest.mark.anyio
async def test_empty_evidence_is_400(service: Running) -> None:
    url = await service.new_session()
    response = await service.http.post(
        url, content=b"", headers={"Content-Type": profile.TDX_QUOTE_MEDIA_TYPE}
    )
    assert_problem(response, 400)


@pytest.mark.anyio
async def test_malformed_evidence_is_400_and_the_session_stays_waiting(service: Running) -> None:
    service.appraiser.error = EvidenceFormatError("not CBOR")
    url = await service.new_session()
    headers = {"Content-Type": ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE}
    assert_problem(await service.http.post(url, content=b"\xff", headers=headers), 400)
    assert (await service.http.get(url)).json()["status"] == "waiting"


@pytest.mark.anyio
async def test_second_submission_is_409(service: Running) -> None:
    url = await service.new_session()
    headers = {"Content-Type": profile.TDX_QUOTE_MEDIA_TYPE}
    assert (await service.http.post(url, content=b"q", headers=headers)).status_code == 200
    assert_problem(await service.http.post(url, content=b"q", headers=headers), 409)


@pytest.mark.anyio
async def test_collateral_unavailable_is_503_and_retryable(service: Running) -> None:
    service.appraiser.error = CollateralError("PCCS down")
    url = await service.new_session()
    headers = {"Content-Type": profile.TDX_QUOTE_MEDIA_TYPE}
    response = await service.http.post(url, content=b"q", headers=headers)
    assert_problem(response, 503)
    assert response.headers["Retry-After"]
    service.appraiser.error = None
    assert (await service.http.post(url, content=b"q", headers=headers)).status_code == 200


@pytest.mark.anyio
async def test_appraiser_crash_is_500_and_the_service_survives(service: Running) -> None:
    service.appraiser.error = RuntimeError("bug")
    url = await service.new_session()
    headers = {"Content-Type": profile.TDX_QUOTE_MEDIA_TYPE}
    body = assert_problem(await service.http.post(url, content=b"q", headers=headers), 500)
    assert "bug" not in body["detail"]
    assert (await service.http.get(url)).json()["status"] == "failed"
    assert (await service.http.post(f"{service.url}{NEW_SESSION_PATH}")).status_code == 201


@pytest.mark.anyio
async def test_session_limit_is_503_until_sessions_expire(service: Running) -> None:
    for _ in range(5):
        await service.new_session()
    assert_problem(await service.http.post(f"{service.url}{NEW_SESSION_PATH}"), 503)
    service.clock.now = NOW + 100
    assert (await service.http.post(f"{service.url}{NEW_SESSION_PATH}")).status_code == 201


@pytest.mark.anyio
async def test_unknown_path_and_method_are_problems(service: Running) -> None:
    assert_problem(await service.http.get(f"{service.url}/nope"), 404)
    response = await service.http.get(f"{service.url}{NEW_SESSION_PATH}")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


@pytest.mark.anyio
async def test_fuzzed_requests_never_get_a_5xx(service: Running) -> None:
    """Arbitrary query strings, content types and bodies: always a 2xx or 4xx answer."""

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        query=st.text(max_size=60),
        # the HTTP client itself refuses header values with surrounding whitespace
        content_type=st.text(
            st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60
        ).map(str.strip),
        body=st.binary(max_size=200),
    )
    def run(query: str, content_type: str, body: bytes) -> None:
        examples.append((query, content_type, body))

    examples: list[tuple[str, str, bytes]] = []
    run()
    url = await service.new_session()
    for query, content_type, body in examples:
        response = await service.http.post(
            f"{service.url}{NEW_SESSION_PATH}", params={"nonce": query}
        )
        assert response.status_code in (201, 400, 503)
        service.clock.now += 1000  # keep the session table from filling up
        url = await service.new_session()
        response = await service.http.post(
            url, content=body, headers={"Content-Type": content_type}
        )
        assert 200 <= response.status_code < 500, response.text


# --- client --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_client_discover_and_appraise(service: Running) -> None:
    async with VerifierClient(service.url) as client:
        info = await client.discover()
        assert info.media_types == EVIDENCE_MEDIA_TYPES and info.state == "READY"
        ear = await client.appraise(NONCE, b"quote", profile.TDX_QUOTE_MEDIA_TYPE)
        verifier = EarVerifier([info.ear_verification_key])
        assert verifier.verify(ear, now=NOW, expected_nonce=NONCE).status is Status.AFFIRMING


@pytest.mark.anyio
async def test_client_raises_verifier_unavailable(service: Running) -> None:
    async with VerifierClient(service.url) as client:
        with pytest.raises(VerifierUnavailable, match="415"):
            await client.appraise(NONCE, b"q", "text/plain")
        with pytest.raises(VerifierUnavailable, match="400"):
            await client.new_session(b"short")
    async with VerifierClient("http://127.0.0.1:1") as client:
        with pytest.raises(VerifierUnavailable):
            await client.discover()


# --- evidence forms --------------------------------------------------------------------------


def test_attquic_evidence_recomputes_report_data_layout_v1() -> None:
    aik = os.urandom(32)
    submitted = decode_evidence(
        ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE, encode_attquic_evidence(b"quote", aik), NONCE
    )
    assert submitted.quote == b"quote"
    binding = Binding(hash_name="sha256", binding=NONCE, aik_pub_hash=aik)
    assert submitted.expected_report_data == binding.report_data


def test_raw_quote_expects_the_nonce_zero_padded() -> None:
    submitted = decode_evidence(profile.TDX_QUOTE_MEDIA_TYPE, b"quote", NONCE)
    assert submitted.expected_report_data == NONCE + bytes(32)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff",
        b"\x80",  # empty array
        encode_attquic_evidence(b"q", bytes(32))[:-1],
        bytes.fromhex("a1") + b"\x69tdx-quote\x41q",  # missing aik-pub-hash
        encode_attquic_evidence(b"q", bytes(48)),  # hash length differs from the nonce's
    ],
)
def test_malformed_attquic_evidence(body: bytes) -> None:
    with pytest.raises(EvidenceFormatError):
        decode_evidence(ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE, body, NONCE)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_attquic_evidence_raises_only_format_error(body: bytes) -> None:
    with contextlib.suppress(EvidenceFormatError):
        decode_evidence(ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE, body, NONCE)


# --- the TDX appraiser on simulated quotes -----------------------------------------------------


@pytest.fixture(scope="module")
def hierarchy() -> SimulatedTdxHierarchy:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SimulatedTdxHierarchy.default()


def _appraiser(
    hierarchy: SimulatedTdxHierarchy,
    *,
    policy: AppraisalPolicy | None = None,
    knobs: SimulationKnobs | None = None,
) -> TdxEvidenceAppraiser:
    collateral = Collateral.from_json(
        hierarchy.collateral_json(NOW, knobs=knobs or SimulationKnobs())
    )
    kwargs: dict[str, Any] = {} if policy is None else {"policy": policy}
    return TdxEvidenceAppraiser(
        StaticCollateral(collateral), unsafe_root_ca_der=hierarchy.root_ca_der, **kwargs
    )


def _evidence(
    hierarchy: SimulatedTdxHierarchy, binding: Binding, knobs: SimulationKnobs | None = None
) -> bytes:
    quote = hierarchy.quote(binding.report_data, knobs=knobs or SimulationKnobs())
    return encode_attquic_evidence(quote, binding.aik_pub_hash)


def _binding() -> Binding:
    return Binding(hash_name="sha256", binding=os.urandom(32), aik_pub_hash=os.urandom(32))


@pytest.mark.anyio
async def test_tdx_appraiser_affirms_a_good_quote(hierarchy: SimulatedTdxHierarchy) -> None:
    binding = _binding()
    appraiser = _appraiser(hierarchy)
    appraisal = await appraiser.appraise(
        ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE, _evidence(hierarchy, binding), binding.binding, now=NOW
    )
    assert appraisal.status is Status.AFFIRMING
    assert appraisal.trust_vector == TrustVector(
        instance_identity=2, configuration=2, executables=2, hardware=2
    )
    assert appraisal.policy_ids == (appraiser.policy_id,)
    assert appraisal.nonce == binding.binding  # the quote committed to it
    raw = hierarchy.quote(binding.binding + bytes(32))
    appraisal = await appraiser.appraise(
        profile.TDX_QUOTE_MEDIA_TYPE, raw, binding.binding, now=NOW
    )
    assert appraisal.status is Status.AFFIRMING


@pytest.mark.anyio
async def test_tdx_appraiser_binding_mismatch(hierarchy: SimulatedTdxHierarchy) -> None:
    binding, other = _binding(), _binding()
    appraisal = await _appraiser(hierarchy).appraise(
        ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE, _evidence(hierarchy, binding), other.binding, now=NOW
    )
    assert appraisal.status is Status.CONTRAINDICATED
    assert appraisal.trust_vector == TrustVector(instance_identity=96)
    assert appraisal.nonce is None  # the quote was not produced for this nonce


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("knob", "vector"),
    [
        ("bad_quote_signature", TrustVector(instance_identity=97, hardware=97)),
        ("revoked", TrustVector(instance_identity=97, hardware=97)),
        ("expired", TrustVector(instance_identity=97, hardware=97)),
        ("debug", TrustVector(instance_identity=2, hardware=2, executables=96)),
        ("other_mrtd", None),
        ("out_of_date", TrustVector(instance_identity=2, hardware=2, executables=96)),
    ],
)
async def test_tdx_appraiser_contraindicates_bad_evidence(
    hierarchy: SimulatedTdxHierarchy, knob: str, vector: TrustVector | None
) -> None:
    knobs = SimulationKnobs.only(knob)
    policy = None
    if knob == "other_mrtd":
        policy = AppraisalPolicy(accepted_mrtd=(parse_quote(hierarchy.quote(bytes(64))).mrtd,))
        vector = TrustVector(instance_identity=2, hardware=2, executables=96)
    binding = _binding()
    appraisal = await _appraiser(hierarchy, policy=policy, knobs=knobs).appraise(
        ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE,
        _evidence(hierarchy, binding, knobs),
        binding.binding,
        now=NOW,
    )
    assert appraisal.status is Status.CONTRAINDICATED
    assert appraisal.trust_vector == vector
    assert appraisal.nonce is None


@pytest.mark.anyio
async def test_tdx_appraiser_warns_on_an_accepted_out_of_date_tcb(
    hierarchy: SimulatedTdxHierarchy,
) -> None:
    policy = AppraisalPolicy(
        accepted_tcb_statuses=frozenset({"UpToDate", "OutOfDate"}),
        accepted_advisory_ids=frozenset(OUT_OF_DATE_ADVISORIES),
    )
    knobs = SimulationKnobs(out_of_date=True)
    binding = _binding()
    appraisal = await _appraiser(hierarchy, policy=policy, knobs=knobs).appraise(
        ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE,
        _evidence(hierarchy, binding, knobs),
        binding.binding,
        now=NOW,
    )
    assert appraisal.status is Status.WARNING
    assert appraisal.trust_vector is not None and appraisal.trust_vector.hardware == 32


@pytest.mark.anyio
async def test_tdx_appraiser_garbage_quote_is_contraindicated(
    hierarchy: SimulatedTdxHierarchy,
) -> None:
    appraisal = await _appraiser(hierarchy).appraise(
        ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE,
        encode_attquic_evidence(b"not a quote", bytes(32)),
        NONCE,
        now=NOW,
    )
    assert appraisal.status is Status.CONTRAINDICATED


@pytest.mark.anyio
async def test_tdx_appraiser_propagates_collateral_outage() -> None:
    class Down:
        async def get(self, quote: TdxQuote, *, now: float) -> Collateral:
            raise CollateralError("PCCS down")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quote = SimulatedTdxHierarchy.default().quote(bytes(64))
    with pytest.raises(VerifierUnavailable):
        await TdxEvidenceAppraiser(Down()).appraise(
            profile.TDX_QUOTE_MEDIA_TYPE, quote, bytes(8), now=NOW
        )


# --- passport attester end to end (in-process service, real TDX appraiser) -----------------------


@pytest.fixture
async def tdx_service(hierarchy: SimulatedTdxHierarchy) -> AsyncIterator[str]:
    config = VerifierServiceConfig(
        signing_key=KEY, appraiser=_appraiser(hierarchy), clock=FakeClock()
    )
    async with VerifierService(config) as svc:
        yield await svc.start("127.0.0.1", 0)


@pytest.mark.anyio
async def test_passport_attester_produces_an_ear_the_channel_verifier_accepts(
    tdx_service: str, hierarchy: SimulatedTdxHierarchy
) -> None:
    binding = _binding()
    async with VerifierClient(tdx_service) as client:
        attester = PassportAttester(SimulatedTdxAttester(hierarchy), client)
        assert isinstance(attester, Attester)
        cmw = await attester.attest(binding)
    assert isinstance(cmw, CMWRecord)
    assert cmw.type == profile.EAR_JWT_MEDIA_TYPE == IETF_EAR_MEDIA_TYPE
    assert cmw.ind == profile.IND_ATTESTATION_RESULTS
    channel = EarChannelVerifier(EarVerifier([KEY]))
    result = await channel.verify(cmw, binding, now=NOW + 5)
    assert result.status is Status.AFFIRMING
    assert result.claims.profile == IETF_PROFILE
    assert result.claims.submods["tdx"].nonce == binding.binding
    assert result.issuer.startswith("attquic attquic-verifier")
    with pytest.raises(BindingMismatch):
        await channel.verify(cmw, _binding(), now=NOW + 5)
    with pytest.raises(EvidenceInvalid, match="expired"):
        await channel.verify(cmw, binding, now=NOW + 301 + 60)


@pytest.mark.anyio
async def test_passport_attester_with_an_async_quote_source(
    tdx_service: str, hierarchy: SimulatedTdxHierarchy
) -> None:
    class AsyncSource:
        async def get_quote(self, report_data: bytes) -> bytes:
            return hierarchy.quote(report_data)

    binding = _binding()
    async with VerifierClient(tdx_service) as client:
        cmw = await PassportAttester(AsyncSource(), client).attest(binding)
    result = await EarChannelVerifier(EarVerifier([KEY])).verify(cmw, binding, now=NOW)
    assert result.status is Status.AFFIRMING


@pytest.mark.anyio
async def test_passport_attester_reports_an_unreachable_verifier(
    hierarchy: SimulatedTdxHierarchy,
) -> None:
    async with VerifierClient("http://127.0.0.1:1") as client:
        attester = PassportAttester(SimulatedTdxAttester(hierarchy), client)
        with pytest.raises(AttesterUnavailable):
            await attester.attest(_binding())


# --- EAR profiles: draft-ietf-rats-ear-03 by default, Veraison's on request ---------------------


def _payload(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@pytest.mark.anyio
async def test_service_issues_draft03_claim_names(service: Running) -> None:
    url = await service.new_session()
    response = await service.http.post(
        url, content=b"q", headers={"Content-Type": profile.TDX_QUOTE_MEDIA_TYPE}
    )
    claims = _payload(response.json()["result"])
    assert claims["eat_profile"] == "tag:ietf.org,2026:rats/ear#03"
    assert set(claims) == {
        "eat_profile", "iat", "exp", "ear_verifier_id", "submods", "ear_status", "eat_nonce"
    }  # fmt: skip
    assert claims["submods"]["tdx"]["ear_appraisal_policy_ids"] == ["policy:test"]
    assert claims["submods"]["tdx"]["ear_status"] == "affirming"


@pytest.mark.anyio
async def test_service_configured_for_veraison_issues_the_veraison_profile(
    hierarchy: SimulatedTdxHierarchy,
) -> None:
    config = VerifierServiceConfig(
        signing_key=KEY,
        appraiser=_appraiser(hierarchy),
        clock=FakeClock(),
        ear_profile=VERAISON_PROFILE,
    )
    binding = _binding()
    async with VerifierService(config) as svc:
        url = await svc.start("127.0.0.1", 0)
        async with VerifierClient(url) as client:
            cmw = await PassportAttester(SimulatedTdxAttester(hierarchy), client).attest(binding)
    assert isinstance(cmw, CMWRecord)
    assert cmw.type == VERAISON_EAR_MEDIA_TYPE
    claims = _payload(cmw.value.decode())
    assert claims["eat_profile"] == VERAISON_PROFILE
    assert claims["submods"]["tdx"]["ear.status"] == "affirming"
    assert "eat_nonce" not in claims["submods"]["tdx"]  # no such claim in Veraison's appraisal
    result = await EarChannelVerifier(EarVerifier([KEY])).verify(cmw, binding, now=NOW)
    assert result.claims.profile == VERAISON_PROFILE and result.media_type == cmw.type
    # A relying party that accepts only -03 refuses it (the profile is part of its policy).
    strict = EarChannelVerifier(EarVerifier([KEY], expected_profile=IETF_PROFILE))
    with pytest.raises(EvidenceInvalid, match="profile"):
        await strict.verify(cmw, binding, now=NOW)


def test_service_refuses_an_unknown_ear_profile() -> None:
    with pytest.raises(ConfigurationError, match="ear_profile"):
        VerifierServiceConfig(
            signing_key=KEY, appraiser=FakeAppraiser(), ear_profile="tag:example.com,2024:x"
        )


def _session_transport(result: str) -> httpx.MockTransport:
    """A verifier that completes every session with ``result`` as the EAR."""

    def handle(request: httpx.Request) -> httpx.Response:
        nonce = request.url.params.get("nonce", b64url(NONCE))
        body = {"status": "waiting", "nonce": nonce, "expiry": "", "accept": []}
        if request.method == "POST" and request.url.path == NEW_SESSION_PATH:
            return httpx.Response(201, json=body, headers={"Location": "/s/1"})
        if request.method == "POST":
            return httpx.Response(200, json=dict(body, status="complete", result=result))
        return httpx.Response(204)

    return httpx.MockTransport(handle)


def _unsigned_jwt(claims: object) -> str:
    header = b64url(b'{"alg":"ES256"}')
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(bytes(64))}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("result", "match"),
    [
        ("not a jwt", "not an EAR JWT"),
        ("a.b", "not an EAR JWT"),
        ("a.!!.c", "not an EAR JWT"),
        ("é.e30.c", "not an EAR JWT"),
        (_unsigned_jwt([1]), "not an EAR JWT"),
        (_unsigned_jwt({"iat": 1}), "profile None"),
        (_unsigned_jwt({"eat_profile": "tag:example.com,2024:x"}), "profile"),
        (_unsigned_jwt({"eat_profile": 3}), "profile 3"),
    ],
)
async def test_passport_attester_refuses_to_present_a_non_ear_result(
    hierarchy: SimulatedTdxHierarchy, result: str, match: str
) -> None:
    """A verifier (or something posing as one) returns a result that is no EAR of an accepted
    profile: the attester refuses (REFUSED on the wire) instead of mislabelling it."""
    binding = Binding(hash_name="sha256", binding=NONCE, aik_pub_hash=os.urandom(32))
    transport = _session_transport(result)
    async with VerifierClient("http://verifier.invalid", transport=transport) as client:
        attester = PassportAttester(SimulatedTdxAttester(hierarchy), client)
        with pytest.raises(AttesterUnavailable, match=match):
            await attester.attest(binding)
