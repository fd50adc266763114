"""Inbound posts through the whole ingest path against bare INSERTs of the same rows, in
the same run (issue 22, item 10).

    .venv/bin/python bench/ingest.py [--posts N] [--runs 3] [--batch 100]
                                     [--databases sqlite,postgresql]

The ingest path is what a poller's batch does (`records.ingest.store`): validate each post
(`PostCreate`), look the batch up by channel and id (a post that came by another route is
skipped), resolve its authors' identities and customers and its conversations, store the
posts and their audit events, a batch per transaction. The baseline inserts the same
posts' rows into `posts` alone, a batch per `executemany`. The mix: a pool of authors who
write again (a fifth of the posts' count), two in five posts answering an earlier one, one
in ten found by listening, one in fifty arriving a second time. Prints posts/s for each
and the ratio (median of `--runs`), and the process's resident memory as the posts go by
(flat over a long `--posts` run).

Targets: at least 2,000 posts/s on SQLite and on PostgreSQL, and at least 0.3 of the bare
INSERT rate.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # see bench/queue.py

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import insert, text

from bench.environment import own_secrets
from records import ingest
from records.db import Database
from records.migrations import upgrade
from records.models import PostCreate
from records.tables import POSTS

PG_ADMIN = os.environ.get(
    "COUNTERSIGN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def inbound(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """`count` posts as a poller hands them over (a generator: nothing is held)."""
    rng = random.Random(seed)
    authors = max(count // 5, 1)
    for n in range(count):
        again = n > 0 and rng.random() < 0.02
        number = rng.randrange(n) if again else n
        author = rng.randrange(authors)
        post: dict[str, Any] = {
            "channel": "x",
            "external_id": f"t{number}",
            "author": f"@user{author}",
            "author_profile": {
                "id": str(author),
                "display_name": f"User {author}",
                "followers": author % 5000,
            },
            "text": f"My card {number} was charged twice, please help",
            "url": f"https://x.com/user{author}/status/{number}",
            "received_at": (T0 + timedelta(seconds=number)).isoformat(),
            "origin": "listening" if rng.random() < 0.1 else "mention",
        }
        if number > 0 and rng.random() < 0.4:
            post["in_reply_to"] = f"t{rng.randrange(number)}"
        yield post


def batches(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_ingest(database: Database, count: int, size: int, seed: int) -> tuple[float, list[str]]:
    memory = []
    marks = {count * k // 4 for k in (1, 2, 3, 4)}
    done = analyzed = 0
    started = time.perf_counter()
    for batch in batches(inbound(count, seed), size):
        valid = [PostCreate.model_validate(raw) for raw in batch]
        with database.write_session() as session:
            ingest.store(session, valid, actor="poller:bench", actor_role="integration")
        before, done = done, done + len(batch)
        if any(before < mark <= done for mark in marks):
            memory.append(f"{done:,}: {rss_mib():.0f} MiB")
        if done >= analyzed * 1.1 + 50:
            autovacuum_analyze(database)
            analyzed = done
    return count / (time.perf_counter() - started), memory


def autovacuum_analyze(database: Database) -> None:
    """What autovacuum does on PostgreSQL once a table grew by a tenth (its default
    `autovacuum_analyze_scale_factor`), within its one-minute nap: a run of seconds would
    otherwise measure tables whose statistics still say they are empty, which a service
    sees only in its first minute. Counted in the time, as autovacuum's work would be."""
    if database.dialect == "postgresql":
        with database.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()


def run_bare(database: Database, count: int, size: int, seed: int) -> float:
    """The same posts' rows, straight into `posts` (the second arrival of one skipped, as a
    unique key would have it)."""
    seen: set[str] = set()
    started = time.perf_counter()
    for batch in batches(inbound(count, seed), size):
        rows = []
        for raw in batch:
            if raw["external_id"] in seen:
                continue
            seen.add(raw["external_id"])
            rows.append({
                "channel": raw["channel"], "external_id": raw["external_id"],
                "author": raw["author"], "text": raw["text"], "url": raw["url"],
                "received_at": datetime.fromisoformat(raw["received_at"]),
                "priority": "normal", "status": "new", "origin": raw["origin"],
                "in_reply_to": raw.get("in_reply_to"),
                "created_at": T0, "updated_at": T0,
            })  # fmt: skip
        with database.write() as connection:
            connection.execute(insert(POSTS), rows)
    return count / (time.perf_counter() - started)


def fresh(kind: str, workdir: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / f'{uuid.uuid4().hex[:8]}.db'}", None
    name = f"countersign_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", name


def drop(name: str | None) -> None:
    if name is not None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def one_run(
    kind: str, count: int, size: int, seed: int, workdir: Path
) -> tuple[float, float, list[str]]:
    """(ingest posts/s, bare posts/s, memory marks), each side on a database of its own."""
    results = []
    for side in ("ingest", "bare"):
        url, name = fresh(kind, workdir)
        try:
            upgrade(url)
            database = Database(url)
            if side == "ingest":
                rate, memory = run_ingest(database, count, size, seed)
            else:
                rate = run_bare(database, count, size, seed)
            results.append(rate)
            database.engine.dispose()
        finally:
            drop(name)
    return results[0], results[1], memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    os.environ.update(own_secrets())
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases.split(","):
            runs = [
                one_run(kind, args.posts, args.batch, seed, Path(tmp)) for seed in range(args.runs)
            ]
            ingest = statistics.median(r[0] for r in runs)
            bare = statistics.median(r[1] for r in runs)
            ratio = ingest / bare
            verdict = "ok" if ingest >= 2_000 and ratio >= 0.3 else "BELOW TARGET"
            print(
                f"{kind}: {args.posts:,} posts, median of {args.runs}: ingest {ingest:,.0f} posts/s"
                f" ({', '.join(f'{r[0]:,.0f}' for r in runs)}), bare INSERT {bare:,.0f} posts/s"
                f" ({', '.join(f'{r[1]:,.0f}' for r in runs)}); ratio {ratio:.2f}"
                f" (targets >= 2,000 posts/s and >= 0.3): {verdict}"
            )
            print(f"  resident memory as posts went by (last run): {'; '.join(runs[-1][2])}")


if __name__ == "__main__":
    main()
