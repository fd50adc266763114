"""The Merkle tree over the audit events, as Certificate Transparency hashes its log
(RFC 6962 section 2.1, RFC 9162 section 2.1): leaf = SHA-256(0x00 || leaf bytes), node =
SHA-256(0x01 || left || right), and a tree of n leaves split at the largest power of two
below n. Pure (the standard library only).

Nodes are named (level, index): level 0 holds the leaves, and node (l, i) is the root of
the perfect subtree over leaves [i * 2^l, (i + 1) * 2^l). Only such perfect subtrees are
ever stored (`records.audit` adds them as events are appended); every root, inclusion proof
and consistency proof is assembled from O(log n) of them through `Nodes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
# Reads the stored hash of node (level, index).
Nodes = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where RFC 6962 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """The aligned perfect subtrees that cover leaves [lo, hi), left to right, as RFC 6962's
    recursion meets them (for lo = 0: one per bit of hi, the largest first)."""
    found: list[tuple[int, int]] = []
    while lo < hi:
        size = split(hi - lo + 1) if hi - lo > 1 else 1
        # The largest aligned block at lo that fits.
        while lo % size:
            size //= 2
        level = size.bit_length() - 1
        found.append((level, lo >> level))
        lo += size
    return found


def range_root(lo: int, hi: int, nodes: Nodes) -> bytes:
    """RFC 6962's MTH of leaves [lo, hi) where lo is aligned to the split of [lo, hi), as
    every range in `root` and the proofs is."""
    if hi <= lo:
        return EMPTY_ROOT
    parts = perfect_subtrees(lo, hi)
    acc = nodes(*parts[-1])
    for level, index in reversed(parts[:-1]):
        acc = node_hash(nodes(level, index), acc)
    return acc


def root(size: int, nodes: Nodes) -> bytes:
    return range_root(0, size, nodes)


def inclusion_proof(index: int, size: int, nodes: Nodes) -> list[bytes]:
    """RFC 6962's PATH(index, D[size]): the sibling hashes from the leaf up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            proof.append(range_root(lo + k, hi, nodes))
            hi = lo + k
        else:
            proof.append(range_root(lo, lo + k, nodes))
            lo = lo + k
    return list(reversed(proof))


def consistency_proof(old: int, new: int, nodes: Nodes) -> list[bytes]:
    """RFC 6962's PROOF(old, D[new]): what shows the tree of `new` leaves extends the tree
    of `old` leaves."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    proof: list[bytes] = []
    lo, hi, m, whole = 0, new, old, True
    while m != hi - lo:
        k = split(hi - lo)
        if m <= k:
            proof.append(range_root(lo + k, hi, nodes))
            hi = lo + k
        else:
            proof.append(range_root(lo, lo + k, nodes))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        proof.append(range_root(lo, hi, nodes))
    return list(reversed(proof))


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected_root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if old == new:
        return not proof and old_root == new_root
    if not 0 < old < new or not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def completed(
    index: int, leaf: bytes, left_siblings: Callable[[list[tuple[int, int]]], list[bytes]]
) -> list[tuple[int, int, bytes]]:
    """The nodes that appending leaf `index` (with hash `leaf`) adds: the leaf itself and
    every parent it completes. `left_siblings` reads the stored nodes it pairs with."""
    added = [(0, index, leaf)]
    carries = (index ^ (index + 1)).bit_length() - 1  # the trailing ones of index
    if carries:
        wanted = [(level, (index >> level) - 1) for level in range(carries)]
        acc = leaf
        for (level, sibling), left in zip(wanted, left_siblings(wanted), strict=True):
            acc = node_hash(left, acc)
            added.append((level + 1, sibling >> 1, acc))
    return added
