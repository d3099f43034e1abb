"""tests/data is complete and documented: every file there is listed in its README with its
origin, every path the README lists exists, and the assembled collateral files are exactly the
upstream pieces kept beside them."""

from __future__ import annotations

import json
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from data_paths import DATA, TDX_SAMPLES, VECTORS

_README = DATA / "README.md"
_FOLDERS = "|".join(sorted(re.escape(path.name) for path in DATA.iterdir() if path.is_dir()))
_LISTED = re.compile(rf"`((?:{_FOLDERS})/[^`]*|[^`/\s]+\.json)`")
"""A data path in the README: one under a folder of tests/data, or a JSON file at the top."""


def _listed() -> set[str]:
    return set(_LISTED.findall(_README.read_text()))


def _files() -> list[str]:
    return sorted(
        path.relative_to(DATA).as_posix()
        for path in DATA.rglob("*")
        if path.is_file() and path != _README
    )


def test_every_data_file_is_listed_in_the_readme() -> None:
    listed = _listed()
    folders = [entry for entry in listed if entry.endswith("/")]
    missing = [
        name
        for name in _files()
        if name not in listed and not any(name.startswith(folder) for folder in folders)
    ]
    assert not missing, f"add these to tests/data/README.md: {missing}"


def test_every_listed_path_exists() -> None:
    absent = [entry for entry in _listed() if not (DATA / entry).exists()]
    assert not absent, f"tests/data/README.md lists missing files: {absent}"


def test_the_data_is_all_there() -> None:
    """Guards against a partial copy: the counts the README states."""
    assert len(list((VECTORS / "merkle" / "inclusion").rglob("*.json"))) == 98
    results = json.loads((TDX_SAMPLES / "results.json").read_text())["results"]
    quotes = {case["quote"] for case in results}
    assert len(quotes) == 7
    for quote in quotes:
        assert (TDX_SAMPLES / quote).is_file(), quote


def _pem_chain(text: str) -> list[bytes]:
    return [
        cert.public_bytes(Encoding.DER) for cert in x509.load_pem_x509_certificates(text.encode())
    ]


@pytest.mark.parametrize(
    ("assembled", "tcb_info", "qe_identity", "pck_crl", "root_crl"),
    [
        (
            "go-tdx-guest/collateral_v4_assembled.json",
            "go-tdx-guest/sample_tcbInfo_response",
            "go-tdx-guest/sample_qeIdentity_response",
            "go-tdx-guest/pckcrl",
            "go-tdx-guest/rootcrl.der",
        ),
        (
            "zkdcap/collateral_00806f050000_assembled.json",
            "zkdcap/tcbinfov3_00806f050000.json",
            "zkdcap/qeidentityv2_tdx.json",
            "zkdcap/pck_platform_crl.der",
            "zkdcap/intel_root_ca_crl.der",
        ),
    ],
)
def test_assembled_collateral_is_made_of_its_upstream_pieces(
    assembled: str, tcb_info: str, qe_identity: str, pck_crl: str, root_crl: str
) -> None:
    """The signed texts and signatures are the exact PCS responses, the CRLs the exact DER, and
    every issuer chain ends in the Intel root the verifier pins."""
    collateral = json.loads((TDX_SAMPLES / assembled).read_text())
    tcb_response = (TDX_SAMPLES / tcb_info).read_text()
    qe_response = (TDX_SAMPLES / qe_identity).read_text()
    assert tcb_response.startswith('{"tcbInfo":' + collateral["tcb_info"] + ',"signature":')
    assert f'"signature":"{collateral["tcb_info_signature"]}"' in tcb_response
    assert qe_response.startswith(
        '{"enclaveIdentity":' + collateral["qe_identity"] + ',"signature":'
    )
    assert f'"signature":"{collateral["qe_identity_signature"]}"' in qe_response
    assert bytes.fromhex(collateral["pck_crl"]) == (TDX_SAMPLES / pck_crl).read_bytes()
    assert bytes.fromhex(collateral["root_ca_crl"]) == (TDX_SAMPLES / root_crl).read_bytes()
    root = (TDX_SAMPLES / "intel-root/Intel_SGX_Root_CA.der").read_bytes()
    for chain in ("pck_crl_issuer_chain", "tcb_info_issuer_chain", "qe_identity_issuer_chain"):
        assert _pem_chain(collateral[chain])[-1] == root, chain


def test_the_zkdcap_tcb_signing_certificate_is_the_one_in_its_chain() -> None:
    collateral = json.loads(
        (TDX_SAMPLES / "zkdcap/collateral_00806f050000_assembled.json").read_text()
    )
    signer = _pem_chain((TDX_SAMPLES / "zkdcap/tcb_signing_cert.pem").read_text())
    assert signer[0] == _pem_chain(collateral["tcb_info_issuer_chain"])[0]
