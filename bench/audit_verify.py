"""Audit-log verification speed: builds N chained events (default 1,000,000) in a SQLite
file, signs a checkpoint of their Merkle tree, then times `records.audit.verify` holding
the log to that checkpoint and, as the baseline in the same run, one hashlib.sha256 pass
over the same bytes verify hashes (each event's chain input, its payload, its leaf, and the
tree's inner nodes). Targets: >= 250,000 events/s on SQLite; at most 4x the hashlib pass.

    .venv/bin/python bench/audit_verify.py [--events N] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import psycopg
from sqlalchemy import insert

from records import audit
from records.db import Database
from records.migrations import upgrade
from records.models import AuditEvent

PG_ADMIN = os.environ.get(
    "COUNTERSIGN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build(database: Database, count: int) -> tuple[list[bytes], bytes]:
    """Insert `count` chained events; the exact bytes verify hashes, and the tree's root."""
    hashed_inputs: list[bytes] = []
    prev = audit.GENESIS_HASH
    batch = []
    tree = audit._Tree()
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
            tree.add(hashlib.sha256(leaf).digest())
            hashed_inputs += [data, event.payload.encode(), leaf]
            if seq > 1:
                hashed_inputs.append(b"\x01" + bytes(64))  # about one inner node a leaf
            prev = event.hash
            batch.append(event.model_dump())
            if len(batch) == 20_000:
                conn.execute(insert(AuditEvent), batch)
                batch.clear()
        if batch:
            conn.execute(insert(AuditEvent), batch)
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
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.database == "sqlite":
        with tempfile.TemporaryDirectory(prefix="countersign-bench-") as tmp:
            run(f"sqlite:///{tmp}/audit.db", args.events)
        return
    name = f"countersign_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        run(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", args.events)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
