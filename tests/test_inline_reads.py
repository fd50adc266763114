"""Reads on the event loop (`records.db.Database.read`, SQLite): a read runs inline while it
is short, and one that turns out long is stopped after `INLINE_STEPS` of SQLite's work and
answered from a thread, so it holds up every other request no longer than that; what the
stopped attempt read, or made of its interruption, is never the answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from records.db import INLINE_STEPS, Database

# Counting to this in a recursive query takes SQLite several instructions a row: far more
# than `INLINE_STEPS`.
LONG = 200_000
COUNT_TO_LONG = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :last) "
    "SELECT count(*) FROM n"
)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'reads.db'}")
    yield database
    database.dispose()


def _read(database: Database, query: object) -> tuple[object, list[tuple[bool, str]]]:
    """The answer, and each attempt: (on the event loop's thread, how it ended)."""
    attempts: list[tuple[bool, str]] = []

    async def main() -> object:
        loop_thread = threading.get_ident()

        def attempt(connection: Connection) -> object:
            on_loop = threading.get_ident() == loop_thread
            try:
                answer = query(connection)  # type: ignore[operator]
            except Exception as exc:
                attempts.append((on_loop, type(exc).__name__))
                raise
            attempts.append((on_loop, "answered"))
            return answer

        return await database.read(attempt)

    return asyncio.run(main()), attempts


def test_a_short_read_is_answered_on_the_event_loop(database: Database) -> None:
    answer, attempts = _read(database, lambda c: c.execute(text("SELECT 41 + 1")).scalar_one())
    assert answer == 42
    assert attempts == [(True, "answered")]


def test_a_long_read_is_stopped_on_the_event_loop_and_answered_from_a_thread(
    database: Database,
) -> None:
    answer, attempts = _read(
        database, lambda c: c.execute(COUNT_TO_LONG, {"last": LONG}).scalar_one()
    )
    assert answer == LONG
    assert attempts == [(True, "OperationalError"), (False, "answered")]


def test_a_read_that_swallows_its_interruption_is_not_answered_by_it(database: Database) -> None:
    """A read that catches the error its interruption raised, and answers something else
    (a default, a partial count), is run again: that answer is not the read's."""

    def forgiving(connection: Connection) -> int:
        try:
            return int(connection.execute(COUNT_TO_LONG, {"last": LONG}).scalar_one())
        except DBAPIError:
            return -1

    answer, attempts = _read(database, forgiving)
    assert answer == LONG
    assert attempts == [(True, "answered"), (False, "answered")]


def test_a_read_that_fails_on_its_own_fails_once_with_its_own_error(database: Database) -> None:
    with pytest.raises(DBAPIError, match="no such table"):
        _read(database, lambda c: c.execute(text("SELECT * FROM no_such_table")).all())


def test_a_read_just_within_the_budget_stays_on_the_event_loop(database: Database) -> None:
    """A read that needs a few thousand instructions (a page an index answers needs 1,000
    to 3,000) is not cut short."""
    last = 200  # a few instructions a row: well within INLINE_STEPS
    answer, attempts = _read(
        database, lambda c: c.execute(COUNT_TO_LONG, {"last": last}).scalar_one()
    )
    assert answer == last and 10 * last <= INLINE_STEPS
    assert attempts == [(True, "answered")]


def test_the_connection_a_read_was_stopped_on_is_left_without_a_limit(database: Database) -> None:
    """The pooled connection an interrupted read ran on (SQLite's pool hands the same one
    back) answers a long query of anyone else in full."""
    _read(database, lambda c: c.execute(COUNT_TO_LONG, {"last": LONG}).scalar_one())
    with database.engine.connect() as connection:
        assert connection.execute(COUNT_TO_LONG, {"last": LONG}).scalar_one() == LONG
