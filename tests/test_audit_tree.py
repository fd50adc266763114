"""The Merkle tree over the audit events: RFC 6962 hashing held to Certificate
Transparency's published vectors, RFC 9162 proofs, the leaf bytes held to the reference
RFC 8785 canonicaliser, and the tree the database keeps as events are appended (on SQLite
and PostgreSQL) equal to one built from the events alone."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import string

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from records import audit, merkle
from records.db import Database
from records.migrations import downgrade, upgrade
from records.tables import EVENTS, NODES

# RFC 6962 test vectors (as published with Certificate Transparency's reference code).
LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]
LEAVES.append("606162636465666768696a6b6c6d6e6f")
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CONSISTENCY = {
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def tree_of(leaves: list[bytes]) -> merkle.Nodes:
    """A tree built as `records.audit` builds it, a leaf at a time, in memory."""
    store: dict[tuple[int, int], bytes] = {}
    for index, leaf in enumerate(leaves):
        for level, at, digest in merkle.completed(index, leaf, lambda w: [store[k] for k in w]):
            store[(level, at)] = digest
    return lambda level, index: store[(level, index)]


REFERENCE = [merkle.leaf_hash(bytes.fromhex(d)) for d in LEAVES]


def test_roots_and_proofs_match_the_rfc_6962_vectors() -> None:
    nodes = tree_of(REFERENCE)
    assert merkle.root(0, nodes).hex() == ROOTS[0]
    for size in range(1, 9):
        assert merkle.root(size, nodes).hex() == ROOTS[size]
    for (index, size), proof in INCLUSION.items():
        assert [p.hex() for p in merkle.inclusion_proof(index, size, nodes)] == proof
    for (old, new), proof in CONSISTENCY.items():
        assert [p.hex() for p in merkle.consistency_proof(old, new, nodes)] == proof


def test_every_proof_verifies_in_every_size_and_a_wrong_one_does_not() -> None:
    leaves = [merkle.leaf_hash(bytes([i, i * 7 % 256])) for i in range(37)]
    nodes = tree_of(leaves)
    for size in range(1, len(leaves) + 1):
        top = merkle.root(size, nodes)
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, nodes)
            assert merkle.verify_inclusion(leaves[index], index, size, proof, top)
            assert not merkle.verify_inclusion(leaves[index], index, size, proof, bytes(32))
            if size > 1:
                other = (index + 1) % size
                assert not merkle.verify_inclusion(leaves[other], index, size, proof, top)
                bent = [bytes(32), *proof[1:]]
                assert not merkle.verify_inclusion(leaves[index], index, size, bent, top)
        for old in range(1, size + 1):
            proof = merkle.consistency_proof(old, size, nodes)
            before = merkle.root(old, nodes)
            assert merkle.verify_consistency(old, size, before, top, proof)
            if old < size:
                assert not merkle.verify_consistency(old, size, bytes(32), top, proof)
                assert not merkle.verify_consistency(old, size, before, bytes(32), proof)


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
MAYBE_INT = st.none() | st.integers(min_value=0, max_value=2**53 - 1)


@settings(max_examples=300, deadline=None)
@given(
    at=TEXT,
    actor=TEXT,
    role=TEXT,
    action=TEXT,
    draft_id=MAYBE_INT,
    version=MAYBE_INT,
    content=st.none() | st.text(alphabet=string.hexdigits, max_size=64),
    payload=TEXT,
    seq=st.integers(min_value=1, max_value=2**53 - 1),
)
def test_leaf_bytes_are_rfc_8785_for_any_fields(
    at: str,
    actor: str,
    role: str,
    action: str,
    draft_id: int | None,
    version: int | None,
    content: str | None,
    payload: str,
    seq: int,
) -> None:
    digest = hashlib.sha256(payload.encode()).hexdigest()
    fields = (at, actor, role, action, draft_id, version, content, payload)
    document = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "role": role,
        "action": action,
        "draft_id": draft_id,
        "version": version,
        "content_sha256": content,
        "payload_sha256": digest,
    }
    assert audit.leaf_bytes(seq, fields, digest) == rfc8785.dumps(document)


def appended(database: Database, count: int) -> None:
    with database.write_session() as session:
        for n in range(count):
            payload = {"n": n, "text": "ünïcode ✓", "quote": 'say "hi"'}
            event = audit.NewEvent(actor=f"a{n % 3}", role="agent", action="t", payload=payload)
            audit.append(session, event)


def rebuilt_root(database: Database) -> tuple[int, bytes]:
    """The root from the events alone, as an outside verifier would build it."""
    with database.engine.connect() as c:
        rows = c.execute(select(EVENTS).order_by(EVENTS.c.seq)).all()
    leaves = []
    for row in rows:
        fields = audit.hashed_fields(row)
        digest = hashlib.sha256(row.payload.encode()).hexdigest()
        assert row.payload_sha256 == digest
        leaves.append(merkle.leaf_hash(audit.leaf_bytes(row.seq, fields, digest)))
    return len(leaves), merkle.root(len(leaves), tree_of(leaves))


def test_the_stored_tree_is_the_tree_of_the_events(database: Database) -> None:
    appended(database, 21)
    size, expected = rebuilt_root(database)
    with database.write_session() as session:
        nodes = audit.tree_nodes(session)
        assert merkle.root(size, nodes) == expected
        for index in (0, 7, 20):
            proof = merkle.inclusion_proof(index, size, nodes)
            leaf = nodes(0, index)
            assert merkle.verify_inclusion(leaf, index, size, proof, expected)
    with database.engine.connect() as c:  # every perfect subtree, no more: 2n - popcount(n)
        stored = c.execute(select(NODES.c.level, NODES.c.idx)).all()
    assert len(stored) == 2 * size - bin(size).count("1")


def test_the_migration_builds_the_same_tree_over_events_it_finds(
    database: Database, database_url: str
) -> None:
    appended(database, 13)
    with database.engine.connect() as c:
        before = sorted(c.execute(select(NODES)).all())
    database.dispose()
    downgrade(database_url, "0010")  # as if the events had been written before the tree
    upgrade(database_url)
    with database.engine.connect() as c:
        after = sorted(c.execute(select(NODES)).all())
    assert after == before and len(after) == 2 * 13 - 3
    assert rebuilt_root(database)[1] == merkle.root(13, tree_of_rows(after))


def tree_of_rows(rows: list[object]) -> merkle.Nodes:
    found = {(r.level, r.idx): bytes.fromhex(r.hash) for r in rows}  # type: ignore[attr-defined]
    return lambda level, index: found[(level, index)]


@pytest.mark.parametrize("size", [1, 2, 3, 1000, 1023, 1024, 1025])
def test_perfect_subtrees_cover_a_range_exactly_once(size: int) -> None:
    parts = merkle.perfect_subtrees(0, size)
    covered = [i for level, index in parts for i in range(index << level, (index + 1) << level)]
    assert covered == list(range(size))


@settings(max_examples=300, deadline=None)
@given(size=st.integers(0, 5000), count=st.integers(1, 300))
def test_a_batch_pairs_only_with_the_right_edge_and_nodes_it_made(size: int, count: int) -> None:
    """`append_many` gives a batch the tree's right edge (its perfect subtrees, one per bit
    of its size; kept by `audit._Edge` or read from the table) and nothing more: every
    stored node `completed` asks for, one leaf after another, is on that edge or was made by
    the batch itself."""
    made: set[tuple[int, int]] = set()
    asked: set[tuple[int, int]] = set()

    def siblings(wanted: list[tuple[int, int]]) -> list[bytes]:
        asked.update(key for key in wanted if key not in made)
        return [b"\0" * 32 for _ in wanted]

    for index in range(size, size + count):
        made.update((level, i) for level, i, _ in merkle.completed(index, b"\0" * 32, siblings))
    assert asked <= set(merkle.perfect_subtrees(0, size))


@pytest.mark.parametrize("batches", [[1, 1, 5, 16, 1, 9], [37], [2, 30, 3]])
def test_events_appended_in_batches_make_the_same_chain_and_tree(
    database: Database, batches: list[int]
) -> None:
    """`append_many` (a batch of inbound posts) leaves exactly what one `append` after
    another would: every node of every perfect subtree, the root of the events alone, and
    a chain in which each event's hash is its successor's `prev_hash`."""
    number = 0
    for size in batches:
        with database.write_session() as session:
            events = []
            for _ in range(size):
                number += 1
                events.append(audit.NewEvent(actor="t", role="agent", action="post.received",
                                             payload={"n": number}))  # fmt: skip
            audit.append_many(session, events)
    size, expected = rebuilt_root(database)
    assert size == sum(batches)
    with database.write_session() as session:
        assert merkle.root(size, audit.tree_nodes(session)) == expected
    with database.engine.connect() as c:
        stored = c.execute(select(NODES.c.level, NODES.c.idx)).all()
        chain = c.execute(select(EVENTS.c.prev_hash, EVENTS.c.hash).order_by(EVENTS.c.seq)).all()
    assert len(stored) == 2 * size - bin(size).count("1")
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(chain))


def test_the_right_edge_read_from_the_table_is_the_tree_s_own_nodes_at_every_size(
    database: Database,
) -> None:
    """`audit._stored_nodes` reads a tree's right edge in one statement (its levels and its
    indexes as two lists, the primary key probing each pair): at every size, the edge it
    reads is exactly the nodes, in order, that the tree holds one by one, and none of the
    others those lists pair into."""
    with database.write_session() as session:
        audit.append_many(session, [
            audit.NewEvent(actor="t", role="agent", action="post.received", payload={"n": n})
            for n in range(300)
        ])  # fmt: skip
    with database.write_session() as session:
        one_by_one = audit.tree_nodes(session)
        for size in range(1, 301):
            edge = merkle.perfect_subtrees(0, size)
            assert audit._stored_nodes(session, edge) == [one_by_one(*key) for key in edge]


def test_appends_by_another_process_between_this_ones_leave_the_same_tree(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process keeps the tree's right edge it last wrote (`audit._Edge`) and reads it
    from the table only when the head says another process appended since. Three
    processes taking turns, one of whose transactions rolls back, leave the tree of the
    events alone."""
    processes = [audit._Edge() for _ in range(3)]
    number = 0

    def append_as(process: int, count: int, *, commit: bool = True) -> None:
        nonlocal number
        monkeypatch.setattr(audit, "_edge", processes[process])
        failing = contextlib.nullcontext() if commit else pytest.raises(RuntimeError)
        with failing, database.write_session() as session:
            for _ in range(count):
                number += 1
                audit.append(session, audit.NewEvent(actor="t", role="agent",
                                                     action="post.received",
                                                     payload={"n": number}))  # fmt: skip
            if not commit:
                raise RuntimeError("rolled back")

    for process, count in ((0, 3), (0, 4), (1, 1), (0, 2), (2, 5), (2, 1), (1, 6), (0, 1)):
        append_as(process, count)
    append_as(0, 3, commit=False)  # process 0 remembers an edge that was never stored
    append_as(1, 2)
    append_as(0, 1)
    # Process 0 remembers an edge at head 26 that was rolled back; process 1 then brings
    # the log to 26 with other events: the same seq, another hash.
    append_as(0, 3, commit=False)
    append_as(1, 3)
    append_as(0, 2)
    size, expected = rebuilt_root(database)
    assert size == 3 + 4 + 1 + 2 + 5 + 1 + 6 + 1 + 2 + 1 + 3 + 2
    with database.write_session() as session:
        assert merkle.root(size, audit.tree_nodes(session)) == expected
    with database.engine.connect() as c:
        stored = c.execute(select(NODES.c.level, NODES.c.idx)).all()
    assert len(stored) == 2 * size - bin(size).count("1")
