"""Audit-log verification speed: builds N chained events (default 1,000,000) in a SQLite
file, signs a checkpoint of their Merkle tree, then times `records.audit.verify` holding
the log to that checkpoint and, as the baseline in the same run, one hashlib.sha256 pass
over the same bytes verify hashes (each event's chain input, its payload, its leaf, and the
tree's inner nodes). Targets: >= 250,000 events/s on SQLite; at most 4x the hashlib pass.

Then one reply's evidence package (`records.evidence`, its PDF included) from that log:
a draft's events appended after the N, proofs against a checkpoint of the whole log. Its
time (target < 200 ms) and its size, beside the same package from a log of N / 100 events
in the same run: the proofs grow with log N, not N.

    .venv/bin/python bench/audit_verify.py [--events N] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import insert

from api import evidence_pdf
from bench.environment import scratch_database
from records import audit, checkpoints, drafts, evidence, merkle
from records.audit_models import AuditEvent
from records.db import Database
from records.migrations import upgrade
from records.settings import DEV_AUDIT_KEY
from records.tables import NODES, POSTS

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build(database: Database, count: int) -> tuple[list[bytes], bytes]:
    """Insert `count` chained events and their tree's nodes; the exact bytes verify hashes,
    and the tree's root."""
    hashed_inputs: list[bytes] = []
    prev = audit.GENESIS_HASH
    batch = []
    tree = audit._Tree()
    edge: dict[tuple[int, int], bytes] = {}  # the nodes appends still pair with
    nodes: list[dict[str, object]] = []
    with database.engine.begin() as conn:
        for seq in range(1, count + 1):
            event = AuditEvent(
                seq=seq,
                at=T0 + timedelta(milliseconds=seq),
                actor=f"user{seq % 50}",
                role="comms",
                action="draft.approve",
                draft_id=seq // 7 + 1,
                version=1,
                content_sha256="ab" * 32,
                payload=audit.canonical_json({"stage": "comms", "comment": None}),
                prev_hash=prev,
                hash="",
            )
            fields = audit.hashed_fields(event)
            data = audit.hash_input(prev, seq, fields)
            event.hash = hashlib.sha256(data).hexdigest()
            event.payload_sha256 = hashlib.sha256(event.payload.encode()).hexdigest()
            leaf = b"\x00" + audit.leaf_bytes(seq, fields, event.payload_sha256)
            leaf_hash = hashlib.sha256(leaf).digest()
            tree.add(leaf_hash)
            for level, index, digest in merkle.completed(
                seq - 1, leaf_hash, lambda wanted: [edge.pop(k) for k in wanted]
            ):
                edge[(level, index)] = digest
                nodes.append({"level": level, "idx": index, "hash": digest.hex()})
            hashed_inputs += [data, event.payload.encode(), leaf]
            if seq > 1:
                hashed_inputs.append(b"\x01" + bytes(64))  # about one inner node a leaf
            prev = event.hash
            batch.append(event.model_dump())
            if len(batch) == 20_000:
                conn.execute(insert(AuditEvent), batch)
                conn.execute(NODES.insert(), nodes)
                batch.clear()
                nodes.clear()
        if batch:
            conn.execute(insert(AuditEvent), batch)
            conn.execute(NODES.insert(), nodes)
    return hashed_inputs, tree.root()


def run(url: str, count: int) -> None:
    upgrade(url)
    database = Database(url)
    started = time.perf_counter()
    inputs, root = build(database, count)
    signed = audit.Signed(count, root, "bench")
    print(f"built {count:,} events in {time.perf_counter() - started:.1f}s")

    started = time.perf_counter()
    for data in inputs:
        hashlib.sha256(data).hexdigest()
    hash_seconds = time.perf_counter() - started

    with database.read_session() as session:
        started = time.perf_counter()
        result = audit.verify(session, checkpoints=[signed])
        verify_seconds = time.perf_counter() - started
    assert result.ok and result.events_checked == count and result.checkpoint_size == count, result
    print(f"verify:          {count / verify_seconds:12,.0f} events/s ({verify_seconds:.2f}s)")
    print(f"hashlib baseline:{count / hash_seconds:12,.0f} events/s ({hash_seconds:.2f}s)")
    print(f"verify / hashlib time: {verify_seconds / hash_seconds:.1f}x")
    seconds, size = evidence_package(database)
    print(f"evidence package from {count:,} events: {seconds * 1000:.0f} ms, {size:,} bytes")
    database.dispose()


def evidence_package(database: Database) -> tuple[float, int]:
    """Time one reply's package (a draft with a few events after the log's), median of 3."""
    with database.write() as connection:
        post = connection.execute(
            POSTS.insert().returning(POSTS.c.id),
            {
                "channel": "x",
                "external_id": uuid.uuid4().hex,
                "author": "@customer",
                "text": "You charged me twice!",
                "url": "https://x.example/1",
                "received_at": T0,
                "respond_by": T0,
                "priority": "normal",
                "status": "new",
            },
        ).scalar_one()
        draft = drafts.create(connection, post_id=post, author="agent", body="Sorry, fixed.")
        for n in range(5):
            audit.append(
                connection,
                audit.NewEvent(
                    actor="comms",
                    role="comms",
                    action="draft.note",
                    payload={"n": n},
                    draft_id=draft.draft_id,
                    version=1,
                ),
            )
    signer = checkpoints.Signer("bench.local/audit", DEV_AUDIT_KEY)
    times, size = [], 0
    for _ in range(3):
        with database.write() as connection:
            started = time.perf_counter()
            data = evidence.package(
                connection,
                draft.draft_id,
                signer,
                render_pdf=evidence_pdf.render,
                ruleset_text=lambda _version: None,
            )
            times.append(time.perf_counter() - started)
        size = len(data)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    # SQLite also builds the log of N / 100 the evidence package is set beside.
    sizes = [args.events]
    if args.database == "sqlite":
        sizes.append(max(args.events // 100, 10))
    for events in sizes:
        with (
            tempfile.TemporaryDirectory(prefix="countersign-bench-") as tmp,
            scratch_database(args.database, Path(tmp)) as url,
        ):
            run(url, events)


if __name__ == "__main__":
    main()
