"""Merkle trees of RFC 9162 §2.1 (the RFC 6962 structure), with the hash as a parameter.

Pure functions over bytes, used by batched evidence (:mod:`attquic.batching`) with SHA-512 and
checked against the RFC 6962 inclusion vectors with SHA-256.

* :func:`merkle_root`: the Merkle Tree Hash (MTH) of §2.1.1 over a list of leaves;
* :func:`inclusion_proof`: the §2.1.3.1 inclusion proof (audit path) of one leaf;
* :func:`root_from_inclusion_proof`: the §2.1.3.2 verification algorithm: the root a proof
  leads to, or :class:`~attquic.errors.MerkleProofError` when the proof cannot be right for the
  claimed index and size (index out of range, path too short or too long, element of the wrong
  length);
* :func:`verify_inclusion`: the constant-time comparison of that root with the expected one.

``MTH({d}) = H(0x00 ‖ d)`` and ``MTH(D[n]) = H(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))`` with ``k``
the largest power of two smaller than ``n``. The empty tree (``H()``) is not used by attquic
and rejected here: a batch always holds at least one request.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Final

from attquic.errors import MerkleProofError

__all__ = [
    "MAX_TREE_SIZE",
    "HashFunction",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_inclusion_proof",
    "sha256",
    "sha512",
    "verify_inclusion",
]

HashFunction = Callable[[bytes], bytes]
"""A hash over bytes, e.g. :func:`sha512`; its output length fixes the node length."""

#: Largest tree size the verifier accepts (a path is then at most 63 elements long).
MAX_TREE_SIZE: Final = 1 << 63


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


def leaf_hash(leaf: bytes, hash_function: HashFunction = sha512) -> bytes:
    """``H(0x00 ‖ leaf)``."""
    return hash_function(b"\x00" + leaf)


def node_hash(left: bytes, right: bytes, hash_function: HashFunction = sha512) -> bytes:
    """``H(0x01 ‖ left ‖ right)``."""
    return hash_function(b"\x01" + left + right)


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(hashes: Sequence[bytes], hash_function: HashFunction) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(
        _mth(hashes[:k], hash_function), _mth(hashes[k:], hash_function), hash_function
    )


def merkle_root(leaves: Sequence[bytes], hash_function: HashFunction = sha512) -> bytes:
    """MTH(leaves) of RFC 9162 §2.1.1 (at least one leaf)."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    return _mth([leaf_hash(leaf, hash_function) for leaf in leaves], hash_function)


def _path(hashes: Sequence[bytes], index: int, hash_function: HashFunction) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if index < k:
        return [*_path(hashes[:k], index, hash_function), _mth(hashes[k:], hash_function)]
    return [*_path(hashes[k:], index - k, hash_function), _mth(hashes[:k], hash_function)]


def inclusion_proof(
    leaves: Sequence[bytes], index: int, hash_function: HashFunction = sha512
) -> list[bytes]:
    """PATH(index, leaves) of RFC 9162 §2.1.3.1: sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    return _path([leaf_hash(leaf, hash_function) for leaf in leaves], index, hash_function)


def inclusion_proofs(
    leaves: Sequence[bytes], hash_function: HashFunction = sha512
) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's inclusion proof, computing each subtree hash once."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    proofs: list[list[bytes]] = [[] for _ in leaves]
    root = _build([leaf_hash(leaf, hash_function) for leaf in leaves], 0, proofs, hash_function)
    return root, proofs


def _build(
    hashes: Sequence[bytes], offset: int, proofs: list[list[bytes]], hash_function: HashFunction
) -> bytes:
    """The subtree hash of ``hashes`` (leaves from ``offset``), extending their proofs.

    A module function, not a closure: a recursive closure refers to itself through its cell,
    a reference cycle per call that only the garbage collector frees.
    """
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    left = _build(hashes[:k], offset, proofs, hash_function)
    right = _build(hashes[k:], offset + k, proofs, hash_function)
    for i in range(offset, offset + k):
        proofs[i].append(right)
    for i in range(offset + k, offset + len(hashes)):
        proofs[i].append(left)
    return node_hash(left, right, hash_function)


def root_from_inclusion_proof(
    leaf_hash_value: bytes,
    index: int,
    tree_size: int,
    path: Sequence[bytes],
    hash_function: HashFunction = sha512,
) -> bytes:
    """The root that ``path`` leads to from the leaf hash at ``index`` in a tree of ``tree_size``.

    RFC 9162 §2.1.3.2. Raises :class:`~attquic.errors.MerkleProofError` if the index is out of
    range, the path is not exactly as long as this index and size require, or an element (or
    the leaf hash) does not have the hash's length.
    """
    size = len(hash_function(b""))
    if not 0 < tree_size <= MAX_TREE_SIZE:
        raise MerkleProofError(f"tree size {tree_size} is out of range")
    if not 0 <= index < tree_size:
        raise MerkleProofError(f"leaf index {index} is outside a tree of {tree_size} leaves")
    if len(leaf_hash_value) != size:
        raise MerkleProofError(f"leaf hash of {len(leaf_hash_value)} bytes, expected {size}")
    fn, sn = index, tree_size - 1
    result = leaf_hash_value
    for position, element in enumerate(path):
        if len(element) != size:
            raise MerkleProofError(
                f"proof element {position} has {len(element)} bytes, expected {size}"
            )
        if sn == 0:
            raise MerkleProofError(f"proof has more than the {position} elements its size needs")
        if fn & 1 or fn == sn:
            result = node_hash(element, result, hash_function)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, element, hash_function)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleProofError(f"proof of {len(path)} elements is too short for its size")
    return result


def verify_inclusion(
    leaf_hash_value: bytes,
    index: int,
    tree_size: int,
    path: Sequence[bytes],
    root: bytes,
    hash_function: HashFunction = sha512,
) -> None:
    """Raise :class:`~attquic.errors.MerkleProofError` unless the proof leads to ``root``."""
    computed = root_from_inclusion_proof(leaf_hash_value, index, tree_size, path, hash_function)
    if not hmac.compare_digest(computed, root):
        raise MerkleProofError("the inclusion proof does not lead to the expected root")
