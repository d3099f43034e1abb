"""AppraisalPolicy: each rule reports its mismatch, all are listed together, loaders validate."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from attquic.errors import ConfigurationError
from attquic.tdx.collateral import Collateral
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.quote import TdAttributes, TdxQuote, parse_quote

ROOT = Path(__file__).resolve().parent.parent
P1_NOW = 1752919234


@pytest.fixture(scope="module")
def quote(tdx_samples_dir: Path) -> TdxQuote:
    return parse_quote((tdx_samples_dir / "phala-dcap-qvl/tdx_quote").read_bytes())


@pytest.fixture(scope="module")
def collateral(tdx_samples_dir: Path) -> Collateral:
    return Collateral.from_file(tdx_samples_dir / "phala-dcap-qvl/tdx_quote_collateral.json")


def _with_attributes(quote: TdxQuote, raw: int) -> TdxQuote:
    body = dataclasses.replace(quote.body, td_attributes=TdAttributes(raw))
    return dataclasses.replace(quote, body=body)


OTHER = bytes([0xAB]) * 48


def test_default_policy_accepts_p1(quote: TdxQuote, collateral: Collateral) -> None:
    assert AppraisalPolicy().appraise(quote, "UpToDate", [], collateral, P1_NOW) == []


def test_matching_allowlists_accept(quote: TdxQuote, collateral: Collateral) -> None:
    body = quote.body
    policy = AppraisalPolicy(
        accepted_mrtd=[OTHER, body.mrtd],
        accepted_rtmr0=[body.rtmrs[0].hex()],
        accepted_rtmr1=["0x" + body.rtmrs[1].hex().upper()],
        accepted_rtmr2=[body.rtmrs[2]],
        accepted_rtmr3=[body.rtmrs[3]],
        accepted_mrconfigid=[body.mrconfigid],
        accepted_mrowner=[body.mrowner],
    )
    assert policy.appraise(quote, "UpToDate", [], collateral, P1_NOW) == []


@pytest.mark.parametrize(
    ("field", "label"),
    [
        ("accepted_mrtd", "MRTD"),
        ("accepted_rtmr0", "RTMR0"),
        ("accepted_rtmr1", "RTMR1"),
        ("accepted_rtmr2", "RTMR2"),
        ("accepted_rtmr3", "RTMR3"),
        ("accepted_mrconfigid", "MRCONFIGID"),
        ("accepted_mrowner", "MROWNER"),
    ],
)
def test_each_measurement_rule(
    quote: TdxQuote, collateral: Collateral, field: str, label: str
) -> None:
    policy = AppraisalPolicy(**{field: [OTHER]})
    reasons = policy.appraise(quote, "UpToDate", [], collateral, P1_NOW)
    assert len(reasons) == 1 and reasons[0].startswith(label + " ")


def test_debug_rule(quote: TdxQuote, collateral: Collateral) -> None:
    debug = _with_attributes(quote, 1 | 1 << 28)
    assert "debug" in AppraisalPolicy().appraise(debug, "UpToDate", [], collateral, P1_NOW)[0]
    assert AppraisalPolicy(allow_debug=True).appraise(debug, "UpToDate", [], None, P1_NOW) == []


def test_sept_ve_disable_rule(quote: TdxQuote) -> None:
    plain = _with_attributes(quote, 0)
    assert "SEPT_VE_DISABLE" in AppraisalPolicy().appraise(plain, "UpToDate", [], None, 0)[0]
    relaxed = AppraisalPolicy(require_sept_ve_disable=False)
    assert relaxed.appraise(plain, "UpToDate", [], None, 0) == []


def test_tcb_status_and_advisories(quote: TdxQuote) -> None:
    reasons = AppraisalPolicy().appraise(quote, "SWHardeningNeeded", ["INTEL-SA-1"], None, 0)
    assert reasons == [
        "TCB status SWHardeningNeeded is not accepted (accepted: UpToDate)",
        "advisory INTEL-SA-1 applies to this TCB and is not accepted",
    ]
    policy = AppraisalPolicy(
        accepted_tcb_statuses=["UpToDate", "SWHardeningNeeded"],  # type: ignore[arg-type]
        accepted_advisory_ids=["INTEL-SA-1"],  # type: ignore[arg-type]
    )
    assert policy.appraise(quote, "SWHardeningNeeded", ["INTEL-SA-1"], None, 0) == []
    assert AppraisalPolicy().appraise(quote, None, [], None, 0) == []


def test_collateral_age(quote: TdxQuote, collateral: Collateral) -> None:
    policy = AppraisalPolicy(max_collateral_age_seconds=86400)
    fresh = collateral.issued_at + 3600
    assert policy.appraise(quote, "UpToDate", [], collateral, fresh) == []
    reasons = policy.appraise(quote, "UpToDate", [], collateral, collateral.issued_at + 86401)
    assert len(reasons) == 1 and "max_collateral_age_seconds" in reasons[0]


def test_every_mismatch_is_listed(quote: TdxQuote, collateral: Collateral) -> None:
    policy = AppraisalPolicy(
        accepted_mrtd=[OTHER],
        accepted_rtmr0=[OTHER],
        accepted_rtmr1=[OTHER],
        accepted_rtmr2=[OTHER],
        accepted_rtmr3=[OTHER],
        accepted_mrconfigid=[OTHER],
        accepted_mrowner=[OTHER],
        max_collateral_age_seconds=1,
    )
    bad = _with_attributes(quote, 1)
    reasons = policy.appraise(bad, "OutOfDate", ["INTEL-SA-A", "INTEL-SA-B"], collateral, P1_NOW)
    assert len(reasons) == 7 + 2 + 1 + 2 + 1


def test_dict_round_trip() -> None:
    policy = AppraisalPolicy(
        accepted_mrtd=[OTHER],
        accepted_tcb_statuses=frozenset({"UpToDate", "OutOfDate"}),
        accepted_advisory_ids=frozenset({"INTEL-SA-00960"}),
        max_collateral_age_seconds=3600,
    )
    assert AppraisalPolicy.from_dict(policy.to_dict()) == policy
    assert AppraisalPolicy.from_json(json.dumps(policy.to_dict())) == policy


def test_toml_text_and_files(tmp_path: Path) -> None:
    text = f"""
accepted_mrtd = ["{OTHER.hex()}"]
allow_debug = false
accepted_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
max_collateral_age_seconds = 604800
"""
    policy = AppraisalPolicy.from_toml(text)
    assert policy.accepted_mrtd == (OTHER,)
    assert policy.accepted_tcb_statuses == {"UpToDate", "SWHardeningNeeded"}
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert AppraisalPolicy.from_toml(path) == policy
    assert AppraisalPolicy.from_toml(str(path)) == policy
    assert AppraisalPolicy.from_file(path) == policy
    json_path = tmp_path / "p.json"
    json_path.write_text(json.dumps(policy.to_dict()))
    assert AppraisalPolicy.from_file(json_path) == policy


def test_example_policy_file_loads() -> None:
    policy = AppraisalPolicy.from_toml(ROOT / "examples" / "policy.toml")
    assert not policy.allow_debug and policy.require_sept_ve_disable
    assert "UpToDate" in policy.accepted_tcb_statuses


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"accepted_mrtd": ["zz"]}, "not hex"),
        ({"accepted_mrtd": ["00" * 47]}, "47 bytes"),
        ({"accepted_rtmr2": "00" * 48}, "must be a list"),
        ({"accepted_mrowner": [5]}, "hex text or bytes"),
        ({"allow_debug": "no"}, "allow_debug must be a boolean"),
        ({"require_sept_ve_disable": 1}, "require_sept_ve_disable must be a boolean"),
        ({"accepted_tcb_statuses": ["Fine"]}, "unknown TCB status Fine"),
        ({"accepted_tcb_statuses": []}, "is empty"),
        ({"accepted_advisory_ids": [""]}, "non-empty strings"),
        ({"accepted_advisory_ids": "INTEL-SA-1"}, "list of strings"),
        ({"max_collateral_age_seconds": 0}, "positive"),
        ({"max_collateral_age_seconds": True}, "positive"),
        ({"mrtd": []}, "unknown policy field"),
    ],
)
def test_validation_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AppraisalPolicy.from_dict(data)


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        AppraisalPolicy.from_toml("accepted_mrtd = [")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        AppraisalPolicy.from_json("{")
    with pytest.raises(ConfigurationError, match="table/object"):
        AppraisalPolicy.from_json("[1]")
    with pytest.raises(ConfigurationError, match="cannot read policy file"):
        AppraisalPolicy.from_toml(tmp_path / "missing.toml")
