"""Audit-chain verification speed: builds N chained events (default 1,000,000) in a SQLite
file, then times `records.audit.verify` over them and, as the baseline in the same run, one
hashlib.sha256 pass over the same bytes the chain hashes. Target: >= 250,000 events/s on
SQLite.

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


def build(database: Database, count: int) -> list[bytes]:
    """Insert `count` chained events; return the exact bytes each event's hash covers."""
    hashed_inputs: list[bytes] = []
    prev = audit.GENESIS_HASH
    batch = []
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
            data = audit.hash_input(prev, seq, audit.hashed_fields(event))
            event.hash = hashlib.sha256(data).hexdigest()
            hashed_inputs.append(data)
            prev = event.hash
            batch.append(event.model_dump())
            if len(batch) == 20_000:
                conn.execute(insert(AuditEvent), batch)
                batch.clear()
        if batch:
            conn.execute(insert(AuditEvent), batch)
    return hashed_inputs


def run(url: str, count: int) -> None:
    upgrade(url)
    database = Database(url)
    started = time.perf_counter()
    inputs = build(database, count)
    print(f"built {count:,} events in {time.perf_counter() - started:.1f}s")

    started = time.perf_counter()
    for data in inputs:
        hashlib.sha256(data).hexdigest()
    hash_seconds = time.perf_counter() - started

    with database.read_session() as session:
        started = time.perf_counter()
        result = audit.verify(session)
        verify_seconds = time.perf_counter() - started
    assert result.ok and result.events_checked == count, result
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
