"""Reads on the event loop (`records.db.Database.read`, SQLite): a read runs inline while it
is short, and one that turns out long is stopped after `INLINE_STEPS` of SQLite's work or
`INLINE_SECONDS` of the clock and answered from a thread, so it holds up every other
request no longer than that; what the stopped attempt read, or made of its interruption,
is never the answer. The pages of the queue an index answers stay well within it."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy import TextClause, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from countersign import tracing
from lifecycle.words import PostStatus, QueueOrder
from records import db, posts
from records.db import INLINE_STEPS, Database
from records.migrations import upgrade
from records.settings import Settings
from records.tables import POSTS

LONG = 200_000  # counting to this takes SQLite far more than INLINE_STEPS
COUNT_TO = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :last) "
    "SELECT count(*) FROM n"
)
# The same rows one by one: SQLite hands the first over before it has counted the rest, so
# a stop comes while the rows are fetched rather than while the statement runs.
ROWS_TO = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :last) "
    "SELECT i FROM n"
)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'reads.db'}")
    yield database
    database.dispose()


Attempts = list[tuple[bool, str]]


def _read(
    database: Database,
    query: Callable[[Connection], Any],
    attempts: Attempts,
    *,
    short: bool = True,
) -> Any:
    """The read's answer (`Database.read`, `short` as given); each attempt is noted in
    `attempts`: (on the event loop's thread, how it ended)."""

    async def main() -> Any:
        loop_thread = threading.get_ident()

        def attempt(connection: Connection) -> Any:
            on_loop = threading.get_ident() == loop_thread
            try:
                answer = query(connection)
            except Exception as exc:
                attempts.append((on_loop, type(exc).__name__))
                raise
            attempts.append((on_loop, "answered"))
            return answer

        return await database.read(attempt, short=short)

    return asyncio.run(main())


def _steps(database: Database, query: Callable[[Connection], Any]) -> int:
    """SQLite's instructions for `query`, counted as `Database.read` counts them."""
    ticks = 0

    def tick() -> bool:
        nonlocal ticks
        ticks += 1
        return False

    with database.engine.connect() as connection:
        sqlite = connection.connection.driver_connection
        assert isinstance(sqlite, sqlite3.Connection)
        sqlite.set_progress_handler(tick, 1)
        try:
            query(connection)
        finally:
            sqlite.set_progress_handler(None, 0)
    return ticks


def _count_to(last: int) -> Callable[[Connection], int]:
    return lambda c: int(c.execute(COUNT_TO, {"last": last}).scalar_one())


def test_a_short_read_is_answered_on_the_event_loop(database: Database) -> None:
    attempts: Attempts = []
    assert _read(database, lambda c: c.execute(text("SELECT 41 + 1")).scalar_one(), attempts) == 42
    assert attempts == [(True, "answered")]


@pytest.mark.parametrize("statement", [COUNT_TO, ROWS_TO], ids=["while run", "while fetched"])
def test_a_long_read_is_stopped_on_the_event_loop_and_answered_from_a_thread(
    database: Database, statement: Any
) -> None:
    attempts: Attempts = []
    answer = _read(database, lambda c: c.execute(statement, {"last": LONG}).all(), attempts)
    assert len(answer) == (1 if statement is COUNT_TO else LONG)
    assert attempts == [(True, "OperationalError"), (False, "answered")]


def test_a_read_that_swallows_its_interruption_is_not_answered_by_it(database: Database) -> None:
    """A read that catches the error its interruption raised, and answers something else
    (a default, a partial count), is run again: that answer is not the read's."""

    def forgiving(connection: Connection) -> int:
        try:
            return _count_to(LONG)(connection)
        except DBAPIError:
            return -1

    attempts: Attempts = []
    assert _read(database, forgiving, attempts) == LONG
    assert attempts == [(True, "answered"), (False, "answered")]


def test_a_read_that_fails_on_its_own_fails_once_with_its_own_error(database: Database) -> None:
    attempts: Attempts = []
    with pytest.raises(DBAPIError, match="no such table"):
        _read(database, lambda c: c.execute(text("SELECT * FROM no_such_table")).all(), attempts)
    assert attempts == [(True, "OperationalError")]


def test_the_budget_is_counted_in_sqlites_instructions(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read of nine tenths of `INLINE_STEPS` is answered on the event loop; one of eleven
    tenths is stopped there. (The clock's budget is set aside: it is the next test's.)"""
    monkeypatch.setattr(db, "INLINE_SECONDS", 60.0)
    per_row = _steps(database, _count_to(2_000)) / 2_000
    for share, expected in ((0.9, [(True, "answered")]), (1.1, [(True, "OperationalError")])):
        last = int(INLINE_STEPS * share / per_row)
        steps = _steps(database, _count_to(last))
        assert abs(steps / INLINE_STEPS - share) < 0.05, steps  # the read is the size meant
        attempts: Attempts = []
        assert _read(database, _count_to(last), attempts) == last
        assert attempts[:1] == expected, share


def test_a_read_whose_own_code_takes_long_between_statements_is_stopped_by_the_clock(
    database: Database,
) -> None:
    """Python's time between a read's statements is no instruction of SQLite's: the clock
    counts it, and the next statement long enough to be looked at is stopped."""
    short = 300  # a few thousand instructions: looked at, far within INLINE_STEPS

    def slow(connection: Connection) -> int:
        first = _count_to(short)(connection)
        time.sleep(db.INLINE_SECONDS * 2)  # the read's own work, say
        return first + _count_to(short)(connection)

    attempts: Attempts = []
    assert _read(database, slow, attempts) == 2 * short
    assert attempts == [(True, "OperationalError"), (False, "answered")]


def test_the_connection_a_read_was_stopped_on_is_left_clean(database: Database) -> None:
    """The connection the thread's reads on its event loop run on is left, after an
    interrupted read, with no transaction open (its snapshot would hold the WAL back: a
    checkpoint truncates it) and no limit: the next read on it answers a long query in full
    (from the thread it is moved to) and sees what was written in between."""
    seen: list[int] = []

    def remembered(query: Callable[[Connection], Any]) -> Callable[[Connection], Any]:
        def read(connection: Connection) -> Any:
            seen.append(id(connection.connection.driver_connection))
            return query(connection)

        return read

    _read(database, remembered(_count_to(LONG)), [])
    loop_connection = database._loop_held().connection
    sqlite = loop_connection.connection.driver_connection
    assert id(sqlite) == seen[0]
    assert not sqlite.in_transaction  # type: ignore[union-attr]
    with database.engine.connect() as other:
        busy = other.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    assert busy[0] == 0
    assert loop_connection.execute(COUNT_TO, {"last": LONG}).scalar_one() == LONG
    loop_connection.rollback()
    with database.write() as connection:
        connection.exec_driver_sql("CREATE TABLE written (n INTEGER)")
        connection.exec_driver_sql("INSERT INTO written VALUES (7)")
    attempts: Attempts = []
    written = remembered(lambda c: c.exec_driver_sql("SELECT n FROM written").scalar_one())
    assert _read(database, written, attempts) == 7
    assert attempts == [(True, "answered")] and seen[-1] == seen[0]  # on the loop, same connection


def test_each_read_on_the_loop_sees_every_write_committed_before_it(database: Database) -> None:
    """The connection is held from read to read, a snapshot is not: a write committed
    between two reads on the loop is in the second."""
    with database.write() as connection:
        connection.exec_driver_sql("CREATE TABLE written (n INTEGER)")
    count = text("SELECT count(*) FROM written")
    for n in range(1, 4):
        with database.write() as connection:
            connection.exec_driver_sql("INSERT INTO written VALUES (1)")
        attempts: Attempts = []
        assert _read(database, lambda c: c.execute(count).scalar_one(), attempts) == n
        assert attempts == [(True, "answered")]


def _numbers(database: Database, last: int) -> TextClause:
    """A table of the numbers 1 to `last` (`ROWS_TO`'s); the statement that sums them."""
    with database.write() as connection:
        connection.exec_driver_sql("CREATE TABLE numbers (n INTEGER)")
        connection.execute(text(f"INSERT INTO numbers {ROWS_TO.text}"), {"last": last})
    return text("SELECT sum(n) FROM numbers")


def test_every_thread_reads_on_its_loop_on_a_connection_of_its_own(database: Database) -> None:
    """Two threads, each with an event loop, reading at once: each on its own connection,
    each answered in full; a thread's connection is closed when the thread ends, and the
    one a thread still running holds when the database is disposed."""
    total = _numbers(database, 500)
    answers: dict[int, list[int]] = {}
    held: dict[int, Connection] = {}
    drivers: dict[int, int] = {}
    start = threading.Barrier(2)

    def reader(k: int) -> None:
        start.wait()
        answers[k] = [
            _read(database, lambda c: c.execute(total).scalar_one(), []) for _ in range(200)
        ]
        held[k] = database._loop_held().connection
        drivers[k] = id(held[k].connection.driver_connection)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {0: [125_250] * 200, 1: [125_250] * 200}
    assert drivers[0] != drivers[1]
    # A thread's locals go as its state is cleared, which `join` may return just before;
    # a read stopped by its budget leaves its frames in a cycle with SQLite's error, which
    # the collector frees.
    deadline = time.monotonic() + 5
    while not (held[0].closed and held[1].closed) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert held[0].closed and held[1].closed
    assert _read(database, lambda c: c.execute(total).scalar_one(), []) == 125_250
    mine = database._loop_held().connection
    database.dispose()
    assert mine.closed


def test_a_dispose_waits_for_a_read_running_on_a_connection_it_closes(database: Database) -> None:
    """`dispose` from another thread, again and again, while a thread reads on its loop:
    no read runs on a connection closed under it (which crashed the process, or failed the
    read with "Cannot operate on a closed database"); every read is answered in full."""
    total = _numbers(database, 300)
    answers: list[int] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        async def main() -> None:
            while not done.is_set():
                answers.append(await database.read(lambda c: c.execute(total).scalar_one()))

        try:
            asyncio.run(main())
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(100):
        time.sleep(0.005)
        database.dispose()
    done.set()
    thread.join()
    assert failures == []
    assert len(answers) > 100 and set(answers) == {45_150}


def test_a_read_known_to_scan_goes_to_a_thread_at_once(database: Database) -> None:
    attempts: Attempts = []
    assert _read(database, _count_to(LONG), attempts, short=False) == LONG
    assert attempts == [(False, "answered")]


def test_a_read_on_the_event_loop_never_waits_for_a_connection(tmp_path: Path) -> None:
    """Every pooled connection held by reads on threads, a read on the event loop is
    answered at once: a new connection rather than a wait, which would hold up every
    request (here, the pool's wait is cut to a tenth of a second: a wait fails the read)."""
    database = Database(f"sqlite:///{tmp_path / 'reads.db'}", pool_size=2, pool_timeout=0.1)
    held = [database.engine.connect() for _ in range(20)]
    try:
        attempts: Attempts = []
        assert _read(database, lambda c: c.execute(text("SELECT 1")).scalar_one(), attempts) == 1
        assert attempts == [(True, "answered")]
    finally:
        for connection in held:
            connection.close()
        database.dispose()


def test_a_read_stopped_on_the_event_loop_is_traced_as_moved_not_as_failed(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    memory = InMemorySpanExporter()
    traces = tracing.start(Settings(), "api", exporter=memory)
    assert traces is not None
    traces.database(database)
    with caplog.at_level(logging.WARNING):
        for statement in (COUNT_TO, ROWS_TO):  # stopped while run, while fetched
            _read(database, lambda c, s=statement: c.execute(s, {"last": LONG}).all(), [])
        with pytest.raises(DBAPIError):
            _read(database, lambda c: c.execute(text("SELECT * FROM no_such_table")).all(), [])
    spans = [
        span for span in memory.get_finished_spans() if "n(i)" in span.name + str(span.attributes)
    ]
    # Stopped while it ran: its span says so. Stopped while its rows were fetched: its
    # span had ended as the statement ran, without an error, and is not ended twice.
    moved = [s for s in spans if (s.attributes or {}).get(tracing.MOVED_TO_THREAD)]
    assert len(moved) == 1, [(s.name, s.attributes, s.status) for s in spans]
    assert len(spans) == 4  # each statement once more, answered on a thread
    assert all(s.status.status_code != StatusCode.ERROR for s in spans)
    failed = [s for s in memory.get_finished_spans() if s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 1  # a real failure is still one
    assert "ended span" not in caplog.text
    traces.shutdown()


# --- the queue's pages ------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_page_an_index_answers_stays_within_the_budget(tmp_path: Path) -> None:
    """The largest page (200 posts) of each filter with an index of its own, over posts that
    all match it, in each order: SQLite's instructions for it are well within
    `INLINE_STEPS`, so such a page is answered on the event loop. A filter without one, over
    as many posts matching nothing, is not."""
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    upgrade(url)
    database = Database(url)
    with database.write() as connection:
        connection.execute(insert(POSTS), [
            {"channel": "x", "external_id": f"t{n}", "author": "@a", "text": "hello",
             "url": "https://x.com/a/1", "received_at": T0 + timedelta(minutes=n),
             "respond_by": T0 + timedelta(minutes=n + 60), "priority": "high",
             "status": PostStatus.new.value, "assignee": "ana", "topic": "billing",
             "language": "en", "origin": "mention", "created_at": T0, "updated_at": T0}
            for n in range(10_000)
        ])  # fmt: skip
    shapes = [
        ({}, QueueOrder.arrival), ({"status": PostStatus.new}, QueueOrder.arrival),
        ({"channel": "x"}, QueueOrder.arrival), ({"assignee": "ana"}, QueueOrder.arrival),
        ({"priority": "high"}, QueueOrder.arrival), ({"topic": "billing"}, QueueOrder.arrival),
        ({}, QueueOrder.due), ({"status": PostStatus.new}, QueueOrder.due),
    ]  # fmt: skip
    for filters, order in shapes:
        where = posts.QueueFilter(**filters)
        steps = _steps(
            database,
            lambda c, w=where, o=order: posts.queue(c, w, after=None, limit=200, order=o),
        )
        assert steps < INLINE_STEPS / 2, (filters, order, steps)
    unindexed = posts.QueueFilter(language="zz")
    scan = _steps(database, lambda c: posts.queue(c, unindexed, after=None, limit=200))
    assert scan > INLINE_STEPS
    attempts: Attempts = []
    _read(database, lambda c: posts.queue(c, unindexed, after=None, limit=200), attempts)
    assert attempts == [(True, "OperationalError"), (False, "answered")]
    database.dispose()
