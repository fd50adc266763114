"""Inbound posts through the whole ingest path against bare INSERTs of the same rows, in
the same run (issue 22, item 10).

    .venv/bin/python bench/ingest.py [--posts N] [--runs 3] [--batch 100]
                                     [--databases sqlite,postgresql]

The ingest path is what a poller's batch does (`records.ingest.store`): validate each post
(`PostCreate`), look the batch up by channel and id (a post that came by another route is
skipped), resolve its authors' identities and customers and its conversations, triage each new
post (`policies.triage`, the shipped rule set), store the posts and their audit events, a
batch per transaction. The baseline inserts the same
posts' rows into `posts` alone, a batch per `executemany`. The mix: a pool of authors who
write again (a fifth of the posts' count), two in five posts answering an earlier one, one
in ten found by listening, one in fifty arriving a second time. Prints posts/s for each
and the ratio (median of `--runs`); beside it, the bare INSERTs of every row the ingest
wrote (its customers, identities, conversations and audit record too), which is what the
ingest's own work costs over the writing it must do. And the resident memory of the
process and of the one reading its texts (`policies.readers`), and the rate, as the posts
go by (flat over a long `--posts` run).

Targets: at least 2,000 posts/s on SQLite and on PostgreSQL, and at least 0.3 of the bare
INSERT rate (issue 22); with triage, at least 1,000 posts/s on one core (issue 23).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # see bench/post_list.py

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert, select, text

from bench.environment import own_secrets, resident_bytes, scratch_database
from countersign import heap
from policies.readers import READERS
from policies.versions import RuleBook
from records import ingest
from records.db import Database
from records.migrations import upgrade
from records.post_models import PostCreate
from records.tables import CONVERSATIONS, CUSTOMERS, EVENTS, IDENTITIES, NODES, POSTS

T0 = datetime(2026, 11, 1, tzinfo=UTC)
# What triage reads: complaints, questions, praise, fraud, spam, in several languages.
TEXTS = (
    "@AcmeBank my card was charged twice for order {}, please help",
    "@AcmeBank the app has been down all morning, error {} every time I log in",
    "Thanks @AcmeBank, the branch sorted my problem in minutes ({})",
    "@AcmeBank there are payments on my card I didn't make, ref {}. Block it now!",
    "@AcmeBank me cobraron dos veces la comisión {}, quiero el reembolso",
    "@AcmeBank Meine neue Karte ist nach {} Tagen immer noch nicht angekommen",
    "Acme Bank a encore augmenté ses frais ({} euros), c'est scandaleux",
    "free followers {} https://spam.example/x #AcmeBank",
)


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
            "text": TEXTS[number % len(TEXTS)].format(number),
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


def rss_mib() -> tuple[float, float]:
    """This process's resident memory and its reading process's (`policies.readers`)."""
    reader = READERS.pid()
    return (resident_bytes() or 0) / 2**20, (resident_bytes(reader) or 0) / 2**20 if reader else 0.0


def run_ingest(database: Database, count: int, size: int, seed: int) -> tuple[float, list[str]]:
    memory = []
    marks = {count * k // 10 for k in range(1, 11)}
    done = analyzed = 0
    book = RuleBook()  # the shipped rule set triages
    autovacuum: threading.Thread | None = None
    started = time.perf_counter()
    at_mark = (0, started)  # posts and time at the last mark: the rate since
    for batch in batches(inbound(count, seed), size):
        valid = [PostCreate.model_validate(raw) for raw in batch]
        with database.write_session() as session:
            ingest.store(session, valid, rules=book, actor="poller:bench", actor_role="integration")
        before, done = done, done + len(batch)
        if any(before < mark <= done for mark in marks):
            now = time.perf_counter()
            rate = (done - at_mark[0]) / (now - at_mark[1])
            here, reader = rss_mib()
            memory.append(f"{done:,}: {here:.0f} + {reader:.0f} MiB, {rate:,.0f} posts/s")
            at_mark = (done, now)
        grown = done >= analyzed * 1.1 + 50 and database.dialect == "postgresql"
        if grown and (autovacuum is None or not autovacuum.is_alive()):
            autovacuum = threading.Thread(target=autovacuum_analyze, args=(database,))
            autovacuum.start()
            analyzed = done
    if autovacuum is not None:
        autovacuum.join()
    return count / (time.perf_counter() - started), memory


def autovacuum_analyze(database: Database) -> None:
    """What autovacuum does on PostgreSQL once a table grew by a tenth (its default
    `autovacuum_analyze_scale_factor`), within its one-minute nap: a run of seconds would
    otherwise measure tables whose statistics still say they are empty, which a service
    sees only in its first minute. On a connection of its own beside the ingest, as
    autovacuum's worker is a process of its own (sharing the machine's two cores), and
    the run's time waits for the last one."""
    with database.engine.connect() as connection:
        connection.execute(text(f"ANALYZE {', '.join(t.name for t in WRITTEN)}"))
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
                "respond_by": datetime.fromisoformat(raw["received_at"]),
                "priority": "normal", "status": "new", "origin": raw["origin"],
                "in_reply_to": raw.get("in_reply_to"),
                "created_at": T0, "updated_at": T0,
            })  # fmt: skip
        with database.write() as connection:
            connection.execute(insert(POSTS), rows)
    return count / (time.perf_counter() - started)


def written_rows(database: Database, size: int) -> list[list[tuple[Table, list[dict[str, Any]]]]]:
    """Every row the ingest wrote, as transactions of a batch of posts each: the posts, the
    customers, identities and conversations they are the first to name, and the batch's
    share of the audit record (its events and tree nodes)."""
    with database.engine.connect() as connection:

        def rows(table: Table) -> list[dict[str, Any]]:
            return [dict(row) for row in connection.execute(select(table)).mappings()]

        customers = {row["id"]: row for row in rows(CUSTOMERS)}
        identities = {row["id"]: row for row in rows(IDENTITIES)}
        conversations = {row["id"]: row for row in rows(CONVERSATIONS)}
        posts, events, nodes = rows(POSTS), rows(EVENTS), rows(NODES)
    batches = -(-len(posts) // size)
    transactions = []
    for n in range(batches):
        share = posts[n * size : (n + 1) * size]
        named = [conversations.pop(p["conversation_id"], None) for p in share]
        met = [c for c in named if c is not None]
        people = [identities.pop(i, None) for i in {p["identity_id"] for p in share}]
        first = [i for i in people if i is not None]
        owners = {p["customer_id"] for p in share} | {i["customer_id"] for i in first}
        transactions.append([
            (CUSTOMERS, [customers.pop(c) for c in sorted(owners) if c in customers]),
            (IDENTITIES, first), (CONVERSATIONS, met), (POSTS, share),
            (EVENTS, events[len(events) * n // batches : len(events) * (n + 1) // batches]),
            (NODES, nodes[len(nodes) * n // batches : len(nodes) * (n + 1) // batches]),
        ])  # fmt: skip
    assert not (customers or identities or conversations), "rows no post names"
    return transactions


BATCH = 100
WRITTEN = (CUSTOMERS, IDENTITIES, CONVERSATIONS, POSTS, EVENTS, NODES)  # the ingest's tables


def run_bare_rows(
    database: Database, written: list[list[tuple[Table, list[dict[str, Any]]]]], count: int
) -> float:
    """Those same rows, inserted bare: a transaction per batch of posts, a table's rows in
    it per `executemany`."""
    started = time.perf_counter()
    for transaction in written:
        with database.write() as connection:
            for table, rows in transaction:
                if rows:
                    connection.execute(insert(table), rows)
    return count / (time.perf_counter() - started)


def one_run(
    kind: str, count: int, size: int, seed: int, workdir: Path
) -> tuple[float, float, float | None, list[str]]:
    """(ingest posts/s, bare posts/s, bare rows posts/s, memory and rate marks), each side
    on a database of its own. The bare rows side holds every row in memory first: it runs
    up to `ALL_ROWS_UP_TO` posts."""
    with scratch_database(kind, workdir) as url:
        upgrade(url)
        database = Database(url)
        rate, memory = run_ingest(database, count, size, seed)
        written = written_rows(database, size) if count <= ALL_ROWS_UP_TO else None
        database.engine.dispose()
    bare: list[float | None] = []
    for side in ("posts", "rows"):
        if side == "rows" and written is None:
            bare.append(None)
            continue
        with scratch_database(kind, workdir) as url:
            upgrade(url)
            database = Database(url)
            if side == "posts":
                bare.append(run_bare(database, count, size, seed))
            else:
                assert written is not None
                bare.append(run_bare_rows(database, written, count))
            database.engine.dispose()
    return rate, bare[0] or 0.0, bare[1], memory


ALL_ROWS_UP_TO = 200_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    os.environ.update(own_secrets())
    heap.settle()  # as the worker, where pollers ingest, does once started (countersign.heap)
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
                f" ({', '.join(f'{r[0]:,.0f}' for r in runs)}), bare INSERT of the posts"
                f" {bare:,.0f} posts/s ({', '.join(f'{r[1]:,.0f}' for r in runs)}); ratio"
                f" {ratio:.2f} (targets >= 2,000 posts/s and >= 0.3): {verdict}"
            )
            every = [r[2] for r in runs if r[2] is not None]
            if every:
                rows = statistics.median(every)
                print(
                    f"  bare INSERT of every row the ingest wrote (posts, customers, identities,"
                    f" conversations, audit events and tree nodes) {rows:,.0f} posts/s"
                    f" ({', '.join(f'{r:,.0f}' for r in every)}); ratio {ingest / rows:.2f}"
                )
            print(
                "  resident memory (this process + the one reading texts) and rate since the"
                " last mark, as posts went by (last run):"
            )
            print(f"  {'; '.join(runs[-1][3])}")


if __name__ == "__main__":
    main()
