"""RFC 9162 §2.1 Merkle trees: the RFC 6962 vectors (SHA-256) and the SHA-512 batch tree."""

from __future__ import annotations

import base64
import json
from typing import Any

import data_paths
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attquic import merkle
from attquic.errors import BindingMismatch, MerkleProofError

VECTORS = data_paths.VECTORS / "merkle" / "inclusion"
# The RFC 6962 reference leaves (the Certificate Transparency test tree of 8 entries).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOT_8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases = [
        (str(path.relative_to(VECTORS)), json.loads(path.read_text()))
        for path in sorted(VECTORS.rglob("*.json"))
    ]
    assert len(cases) == 98, "the vector set is incomplete"
    return cases


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.mark.parametrize(("name", "case"), _cases(), ids=lambda value: str(value)[:40])
def test_rfc6962_inclusion_vector(name: str, case: dict[str, Any]) -> None:
    args = (
        _b64(case["leafHash"]),
        case["leafIdx"],
        case["treeSize"],
        [_b64(p) for p in case["proof"] or []],
        _b64(case["root"]),
        merkle.sha256,
    )
    if case["wantErr"]:
        with pytest.raises(MerkleProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


def test_vectors_hold_happy_paths_and_mutations() -> None:
    cases = _cases()
    assert sum(not case["wantErr"] for _, case in cases) >= 6
    assert sum(case["wantErr"] for _, case in cases) >= 80


def test_root_of_the_reference_tree() -> None:
    assert merkle.merkle_root(LEAVES, merkle.sha256) == ROOT_8
    assert merkle.merkle_root(LEAVES[:1], merkle.sha256) == merkle.sha256(b"\x00")


@pytest.mark.parametrize(
    "name", [name for name, case in _cases() if not case["wantErr"] and "single" not in name]
)
def test_generated_proofs_equal_the_vectors(name: str) -> None:
    case = json.loads((VECTORS / name).read_text())
    size, index = case["treeSize"], case["leafIdx"]
    leaves = LEAVES[:size]
    assert merkle.merkle_root(leaves, merkle.sha256) == _b64(case["root"])
    expected = [_b64(p) for p in case["proof"] or []]
    assert merkle.inclusion_proof(leaves, index, merkle.sha256) == expected


@pytest.mark.parametrize("size", range(1, 70))
def test_every_leaf_of_every_size_verifies_and_proofs_agree(size: int) -> None:
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    root, proofs = merkle.inclusion_proofs(leaves)
    assert root == merkle.merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        assert proofs[index] == merkle.inclusion_proof(leaves, index)
        merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, proofs[index], root)


def _proof(size: int, index: int) -> tuple[list[bytes], bytes, bytes]:
    leaves = [bytes([i]) * 8 for i in range(size)]
    root, proofs = merkle.inclusion_proofs(leaves)
    return proofs[index], root, merkle.leaf_hash(leaves[index])


def test_every_mutation_is_rejected() -> None:
    size, index = 13, 9
    path, root, leaf = _proof(size, index)
    merkle.verify_inclusion(leaf, index, size, path, root)
    mutations: list[tuple[str, int, int, list[bytes], bytes, bytes]] = [
        ("index past the end", size, size, path, root, leaf),
        ("negative index", -1, size, path, root, leaf),
        ("other index", index - 1, size, path, root, leaf),
        ("size halved", index, size // 2 + 4, path, root, leaf),
        ("size doubled", index, size * 2, path, root, leaf),
        ("size zero", 0, 0, [], root, leaf),
        ("path element dropped", index, size, path[:-1], root, leaf),
        ("path element added", index, size, [*path, root], root, leaf),
        ("path reversed", index, size, path[::-1], root, leaf),
        ("short element", index, size, [path[0][:-1], *path[1:]], root, leaf),
        ("long element", index, size, [path[0] + b"\0", *path[1:]], root, leaf),
        ("other leaf", index, size, path, root, merkle.leaf_hash(b"intruder")),
        ("root as leaf", index, size, path, root, root),
        ("wrong root", index, size, path, merkle.sha512(b"x"), leaf),
        ("truncated root", index, size, path, root[:-1], leaf),
    ]
    for bit in range(0, 8 * 64, 61):
        for position in range(len(path)):
            tampered = bytearray(path[position])
            tampered[bit // 8] ^= 1 << (bit % 8)
            new_path = [*path[:position], bytes(tampered), *path[position + 1 :]]
            mutations.append(("bit flip", index, size, new_path, root, leaf))
    for what, i, n, p, r, lf in mutations:
        with pytest.raises(MerkleProofError):
            merkle.verify_inclusion(lf, i, n, p, r)
            pytest.fail(what)


def test_proof_errors_are_binding_mismatches() -> None:
    assert issubclass(MerkleProofError, BindingMismatch)


def test_tree_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        merkle.merkle_root([])
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_proof([b"a"], 1)
    with pytest.raises(MerkleProofError, match="out of range"):
        merkle.root_from_inclusion_proof(merkle.leaf_hash(b"a"), 0, merkle.MAX_TREE_SIZE + 1, [])


@settings(max_examples=60, deadline=None)
@given(
    leaves=st.lists(st.binary(min_size=32, max_size=48), min_size=1, max_size=80, unique=True),
    data=st.data(),
)
def test_members_verify_and_non_members_do_not(leaves: list[bytes], data: st.DataObject) -> None:
    root, proofs = merkle.inclusion_proofs(leaves)
    for index, leaf in enumerate(leaves):
        merkle.verify_inclusion(merkle.leaf_hash(leaf), index, len(leaves), proofs[index], root)
    outsider = data.draw(st.binary(min_size=32, max_size=48).filter(lambda b: b not in leaves))
    index = data.draw(st.integers(0, len(leaves) - 1))
    with pytest.raises(MerkleProofError):
        merkle.verify_inclusion(merkle.leaf_hash(outsider), index, len(leaves), proofs[index], root)
