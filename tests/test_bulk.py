"""Batches of rows in one statement (`records.bulk`, what the ingest writes with), on SQLite
and PostgreSQL: rows another writer stored first are skipped and reported as such, ids come
back in the rows' order, updates touch the rows named and only those, a look-up by keys
finds exactly the keys' rows, and it is answered by the index."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from lifecycle.words import PostStatus
from records import bulk
from records.db import Database
from records.fields import Origin
from records.migrations import upgrade
from records.tables import CONVERSATIONS, CUSTOMERS, IDENTITIES, POSTS
from tests.helpers import fresh_postgres

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def post_row(n: int, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "channel": "x", "external_id": f"p{n}", "author": f"@a{n % 7}", "text": f"post {n} é",
        "url": f"https://x.com/a/status/{n}", "received_at": T0 + timedelta(minutes=n),
        "respond_by": T0 + timedelta(minutes=n, hours=8),
        "priority": "normal", "status": "new", "origin": "mention", "replies_allowed": 1,
        "erased": False, "created_at": T0, "updated_at": T0,
    }  # fmt: skip
    return row | overrides


def test_insert_new_skips_what_is_stored_and_says_which_it_inserted(database: Database) -> None:
    with database.write() as connection:
        first = bulk.insert_new(connection, POSTS, [post_row(n) for n in range(5)],
                                ("channel", "external_id"))  # fmt: skip
        again = bulk.insert_new(connection, POSTS, [post_row(n) for n in range(3, 8)],
                                ("channel", "external_id"))  # fmt: skip
    assert sorted(first) == [("x", f"p{n}") for n in range(5)]
    assert sorted(again) == [("x", f"p{n}") for n in range(5, 8)]
    with database.engine.connect() as connection:
        stored = dict(connection.execute(select(POSTS.c.external_id, POSTS.c.id)).all())
        texts = set(connection.execute(select(POSTS.c.text)).scalars())
    assert stored == {key[1]: post_id for key, post_id in (first | again).items()}
    assert "post 3 é" in texts and len(texts) == 8


def test_insert_ids_are_the_rows_ids_in_their_order(database: Database) -> None:
    names = [f"customer {n}" for n in (5, 1, 9, 3, 7, 2)]
    with database.write() as connection:
        ids = bulk.insert_ids(connection, CUSTOMERS, [
            {"display_name": name, "created_at": T0, "updated_at": T0} for name in names
        ])  # fmt: skip
    with database.engine.connect() as connection:
        by_id = dict(connection.execute(select(CUSTOMERS.c.id, CUSTOMERS.c.display_name)).all())
    assert [by_id[i] for i in ids] == names


def test_update_changes_the_rows_named_and_only_where_asked(database: Database) -> None:
    with database.write() as connection:
        ids = bulk.insert_ids(connection, CUSTOMERS, [
            {"display_name": f"c{n}", "created_at": T0, "updated_at": T0} for n in range(4)
        ])  # fmt: skip
        later = T0 + timedelta(days=1)
        bulk.update(
            connection, CUSTOMERS,
            [{"id": ids[0], "display_name": "first", "updated_at": later},
             {"id": ids[2], "display_name": "third", "updated_at": T0 - timedelta(days=1)}],
            values=lambda new: {"display_name": new.c.display_name, "updated_at": new.c.updated_at},
            only_if=lambda new: CUSTOMERS.c.updated_at < new.c.updated_at,
        )  # fmt: skip
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.display_name).order_by(CUSTOMERS.c.id)
        ).all()
    assert [row.display_name for row in rows] == ["first", "c1", "c2", "c3"]


def test_among_finds_exactly_the_keys_rows_even_where_keys_are_not_unique(
    database: Database,
) -> None:
    """Conversations share a root (one per identity): every one of a root is found."""
    with database.write() as connection:
        customer = bulk.insert_ids(connection, CUSTOMERS, [
            {"display_name": "c", "created_at": T0, "updated_at": T0}])[0]  # fmt: skip
        identities = bulk.insert_ids(connection, IDENTITIES, [
            {"customer_id": customer, "channel": "x", "author_id": f"u{n}", "handle": f"@u{n}",
             "seen_at": T0, "created_at": T0, "updated_at": T0} for n in range(3)
        ])  # fmt: skip
        bulk.insert_new(connection, CONVERSATIONS, [
            {"channel": channel, "root_id": root, "identity_id": who, "customer_id": customer,
             "started_at": T0, "last_post_at": T0, "created_at": T0}
            for channel, root, who in [("x", "r1", identities[0]), ("x", "r1", identities[1]),
                                       ("x", "r2", identities[2]), ("bluesky", "r1", identities[0]),
                                       ("x", "r3", identities[0])]
        ], ("channel", "root_id", "identity_id"))  # fmt: skip
        wanted = {("x", "r1"), ("x", "r2"), ("x", "nothing"), ("mastodon", "r1")}
        found = connection.execute(
            select(CONVERSATIONS.c.channel, CONVERSATIONS.c.root_id).where(
                bulk.among(connection, (CONVERSATIONS.c.channel, CONVERSATIONS.c.root_id), wanted)
            )
        ).all()
        none = connection.execute(
            select(CONVERSATIONS.c.id).where(
                bulk.among(connection, (CONVERSATIONS.c.channel, CONVERSATIONS.c.root_id), set())
            )
        ).all()
        columns = (CONVERSATIONS.c.channel, CONVERSATIONS.c.root_id, CONVERSATIONS.c.identity_id)
        third = connection.execute(
            select(*columns).where(
                bulk.among(connection, columns, {("x", "r1", identities[1]), ("x", "r2", 0)})
            )
        ).all()
    assert sorted(found) == [("x", "r1"), ("x", "r1"), ("x", "r2")]
    assert none == []
    assert third == [("x", "r1", identities[1])]


def test_a_row_is_stored_as_sqlalchemy_stores_it(database: Database) -> None:
    """Every kind of value a batch holds (text, an enum, numbers, a flag, a time, a JSON
    list, none) is stored as SQLAlchemy's own INSERT stores it: byte for byte, JSON as what it
    says. So every reader reads both alike."""
    values = {
        "status": PostStatus.assigned, "origin": Origin.reply, "assignee": "agent",
        "sentiment": -0.4215, "public_risk": True, "triage": ["language en (lingua)", "é ✓"],
        "topic": None, "received_at": datetime(2026, 11, 1, 10, 30, 0, 123456, tzinfo=UTC),
        "respond_by": datetime(2026, 11, 1, 18, 30, tzinfo=UTC), "replies_allowed": 0,
    }  # fmt: skip
    with database.write() as connection:
        bulk.insert_new(connection, POSTS, [post_row(1, **values)], ("channel", "external_id"))
        connection.execute(insert(POSTS), [post_row(1, **values, external_id="p1-plain")])
    names = [column.name for column in POSTS.columns if column.name not in ("id", "external_id")]
    listed = ", ".join(f"{name}::text" if database.dialect == "postgresql" else
                       f"typeof({name}), {name}" for name in names)  # fmt: skip
    with database.engine.connect() as connection:
        bulk_row, plain_row = connection.execute(
            text(f"SELECT {listed} FROM posts ORDER BY external_id")
        ).all()
    # JSON is compared as what it says (SQLAlchemy writes it with json.dumps's spacing and
    # escapes, the batch with orjson's); every other value as it is stored.
    as_said = [json.loads(v) if v and str(v).startswith("[") else v for v in bulk_row]
    assert as_said == [json.loads(v) if v and str(v).startswith("[") else v for v in plain_row]
    assert all(v is None or isinstance(v, int | float | str) for v in bulk_row)


def test_rows_of_several_tables_in_one_go_are_stored_as_each_table_s_own_batch_stores_them(
    database: Database,
) -> None:
    """`insert_each` (one statement on PostgreSQL) stores what `insert` stores table by
    table, a column the rows leave out (`public_risk`, `triage`) taking its default."""

    def customers(prefix: str) -> list[dict[str, object]]:
        return [{"display_name": f"{prefix}{n}", "created_at": T0, "updated_at": T0}
                for n in range(3)]  # fmt: skip

    with database.write() as connection:
        bulk.insert_each(connection, [
            (CUSTOMERS, customers("together ")), (POSTS, [post_row(n) for n in range(4)]),
        ])  # fmt: skip
        bulk.insert(connection, CUSTOMERS, customers("apart "))
        bulk.insert(connection, POSTS, [post_row(n, external_id=f"q{n}") for n in range(4)])
    names = [column.name for column in POSTS.columns if column.name not in ("id", "external_id")]
    with database.engine.connect() as connection:
        rows = connection.execute(select(*(POSTS.c[name] for name in names))
                                  .order_by(POSTS.c.external_id)).all()  # fmt: skip
        named = connection.execute(select(CUSTOMERS.c.display_name)).scalars().all()
    assert rows[:4] == rows[4:] and len(rows) == 8  # p0..p3 as q0..q3
    expected = [f"{kind} {n}" for kind in ("apart", "together") for n in range(3)]
    assert sorted(named) == expected


def test_a_batch_larger_than_a_statement_takes_is_stored_whole(database: Database) -> None:
    """On SQLite a batch goes in statements of at most 128 rows, and fewer where SQLite's
    limit on bound values is lower (here 100 values: six posts of 15 columns)."""
    rows = [post_row(n) for n in range(2500)]
    with database.write() as connection:
        driver = connection.connection.driver_connection
        if isinstance(driver, sqlite3.Connection):
            limit = driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)
        try:
            inserted = bulk.insert_new(connection, POSTS, rows, ("channel", "external_id"))
        finally:
            if isinstance(driver, sqlite3.Connection):
                driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        ids = bulk.insert_ids(connection, CUSTOMERS, [
            {"display_name": f"c{n}", "created_at": T0, "updated_at": T0} for n in range(2500)
        ])  # fmt: skip
    assert len(inserted) == 2500 and len(set(inserted.values())) == 2500
    with database.engine.connect() as connection:
        names = dict(connection.execute(select(CUSTOMERS.c.id, CUSTOMERS.c.display_name)).all())
    assert [names[i] for i in ids] == [f"c{n}" for n in range(2500)]


def test_a_time_without_a_zone_is_refused_not_guessed(database: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), database.write() as connection:
        bulk.insert_new(connection, POSTS, [post_row(1, received_at=datetime(2026, 11, 1))],
                        ("channel", "external_id"))  # fmt: skip


@pytest.fixture
def analyzed(postgres_admin: str | None) -> Iterator[Database]:
    """A PostgreSQL database of its own, its posts filled and analyzed (as autovacuum does
    within a minute of a table's growth)."""
    if postgres_admin is None:
        pytest.skip("PostgreSQL not reachable (a failure under CI=true)")
    with fresh_postgres(postgres_admin) as url:
        database = Database(url)
        with database.write() as connection:
            for start in range(0, 20_000, 1000):
                rows = [post_row(n) for n in range(start, start + 1000)]
                bulk.insert_new(connection, POSTS, rows, ("channel", "external_id"))
        with database.engine.connect() as connection:
            connection.execute(text("ANALYZE posts"))
            connection.commit()
        yield database
        database.dispose()


def test_a_look_up_by_keys_reads_the_unique_index(analyzed: Database) -> None:
    """A batch's look-up costs its keys, not the table: on PostgreSQL the keys are a
    semi-join the planner answers from the unique index; on SQLite, see below."""
    keys = {("x", f"p{n}") for n in range(3000, 3100)}
    with analyzed.write() as connection, bulk.planned_for_each_batch(connection):
        query = select(POSTS.c.id).where(
            bulk.among(connection, (POSTS.c.channel, POSTS.c.external_id), keys)
        )
        literal = query.compile(connection, compile_kwargs={"literal_binds": True})
        plan = "\n".join(connection.exec_driver_sql(f"EXPLAIN {literal}").scalars())
        found = connection.execute(query).all()
    assert len(found) == 100
    assert "Seq Scan on posts" not in plan, plan
    assert "uq_posts_channel_external_id" in plan, plan


def test_on_sqlite_a_look_up_by_keys_reads_the_unique_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    upgrade(url)
    database = Database(url)
    posts = (POSTS.c.channel, POSTS.c.external_id)
    conversations = (CONVERSATIONS.c.channel, CONVERSATIONS.c.root_id, CONVERSATIONS.c.identity_id)
    plans = []
    with database.write() as connection:
        for columns, keys in (
            (posts, {("x", "p1"), ("x", "p2"), ("bluesky", "p3")}),
            (conversations, {("x", "r1", 1), ("x", "r2", 2), ("mastodon", "r1", 1)}),
        ):
            query = select(columns[0]).where(bulk.among(connection, columns, keys))
            literal = query.compile(connection, compile_kwargs={"literal_binds": True})
            plans.append(" ".join(
                str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {literal}")
            ))  # fmt: skip
    database.dispose()
    assert "SCAN posts" not in plans[0], plans[0]
    assert "sqlite_autoindex_posts_1" in plans[0], plans[0]
    assert "SCAN conversations" not in plans[1], plans[1]
    assert "sqlite_autoindex_conversations_1" in plans[1], plans[1]
