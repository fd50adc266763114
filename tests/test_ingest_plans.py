"""A batch's ingest costs its batch, not the tables it writes to (issue 22): on PostgreSQL,
with the tables grown and analyzed as autovacuum leaves them, no statement the ingest runs
reads a whole table to find a batch's rows. Seen before: the author's earlier texts, the
conversations by their roots and the update of the conversations' last post each scanned
their whole table (20,000 rows: 3 to 10 ms a batch, growing with the table) because the
planner's cost model prices a cached index probe as a disk read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from policies.versions import RuleBook
from records import ingest
from records.db import Database
from records.post_models import PostCreate
from tests.helpers import explained, fresh_postgres

ROWS = 20_000
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
# The tables a batch's look-ups and updates touch, each with the index that answers them.
KEYED = ("posts", "conversations", "customer_identities", "customers", "audit_events")


@pytest.fixture(scope="module")
def grown(postgres_admin: str | None) -> Iterator[Database]:
    """A PostgreSQL database whose customers, identities, conversations and posts hold
    `ROWS` rows each (a post per conversation, an identity per customer), analyzed."""
    if postgres_admin is None:
        pytest.skip("PostgreSQL not reachable (a failure under CI=true)")
    with fresh_postgres(postgres_admin) as url:
        database = Database(url)
        with database.engine.begin() as connection:
            for statement in FILL:
                connection.execute(text(statement), {"rows": ROWS, "t0": T0})
        with database.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
        yield database
        database.dispose()


FILL = (
    "INSERT INTO customers (id, display_name, created_at, updated_at)"
    " SELECT n, 'Customer ' || n, :t0, :t0 FROM generate_series(1, :rows) AS n",
    "INSERT INTO customer_identities (id, customer_id, channel, author_id, handle, seen_at,"
    " created_at, updated_at)"
    " SELECT n, n, 'x', 'a' || n, '@a' || n, :t0, :t0, :t0 FROM generate_series(1, :rows) AS n",
    "INSERT INTO conversations (id, channel, root_id, identity_id, customer_id, started_at,"
    " last_post_at, created_at)"
    " SELECT n, 'x', 'p' || n, n, n, :t0, :t0, :t0 FROM generate_series(1, :rows) AS n",
    "INSERT INTO posts (id, channel, external_id, author, text, url, priority, received_at,"
    " respond_by, status, created_at, updated_at, origin, author_id, identity_id, customer_id,"
    " conversation_id)"
    " SELECT n, 'x', 'p' || n, '@a' || n, 'my card was charged twice, order ' || n,"
    " 'https://x.com/a/status/' || n, 'normal', :t0, :t0, 'new', :t0, :t0, 'mention',"
    " 'a' || n, n, n, n FROM generate_series(1, :rows) AS n",
    # Two of the batch's authors known by handle alone (typed in before connectors gave
    # ids): the batch's platform ids adopt them, and their posts take the id.
    "UPDATE customer_identities SET author_id = handle WHERE id IN (98, 195)",
    "UPDATE posts SET author_id = author WHERE identity_id IN (98, 195)",
    "SELECT setval(pg_get_serial_sequence(t, 'id'), :rows) FROM unnest(ARRAY['customers',"
    " 'customer_identities', 'conversations', 'posts']) AS t",
)


def batch() -> list[PostCreate]:
    """A poller's batch: known authors following up on their threads (two of them known by
    handle until now), known authors starting new ones, new authors, one post that came
    before."""
    posts: list[dict[str, Any]] = []
    for n in range(1, 101):
        author = n * 97 % ROWS + 1 if n <= 70 else ROWS + n
        post: dict[str, Any] = {
            "channel": "x", "external_id": f"q{n}", "author": f"@a{author}",
            "author_profile": {"id": f"a{author}", "followers": n},
            "text": f"still waiting on order {n}", "url": f"https://x.com/a/status/q{n}",
            "received_at": (T0 + timedelta(hours=1, seconds=n)).isoformat(),
            "origin": "reply" if n <= 40 else "mention",
        }  # fmt: skip
        if n <= 40:
            post["in_reply_to"] = f"p{author}"
        posts.append(post)
    posts[-1] |= {"external_id": "p5", "author": "@a5", "author_profile": {"id": "a5"}}
    return [PostCreate.model_validate(post) for post in posts]


def test_no_statement_of_a_batch_reads_a_whole_table(grown: Database) -> None:
    with grown.write_session() as session, explained(session.connection()) as plans:
        stored = ingest.store(session, batch(), rules=RuleBook(), actor="poller:t",
                              actor_role="integration")  # fmt: skip
    assert sum(s.created for s in stored) == 99
    assert any("UPDATE posts SET author_id" in s for s, _ in plans)  # two were adopted
    assert len(plans) >= 8, [s for s, _ in plans]  # the look-ups and updates were seen
    scans = [
        (statement.split("\n")[0][:80], plan)
        for statement, plan in plans
        if re.search(rf"Seq Scan on ({'|'.join(KEYED)})\b", plan)
    ]
    assert not scans, "\n\n".join(f"{s}\n{p}" for s, p in scans)
