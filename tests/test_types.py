"""The shared column types: a UTC time reads back as the instant written, on SQLite's fast
path as on its general one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.dialects import sqlite

from records.types import UTCDateTime

_ZONES = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_INSTANTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_ZONES
)


def _general(value: Any) -> datetime | None:
    """The way every database reads the column: the dialect's own parse, then labelled."""
    dialect = sqlite.dialect()
    parsed = UTCDateTime.impl.dialect_impl(dialect).result_processor(dialect, None)(value)
    return UTCDateTime().process_result_value(parsed, dialect)


_FAST = UTCDateTime().dialect_impl(sqlite.dialect()).result_processor(sqlite.dialect(), None)


@given(instant=_INSTANTS)
def test_a_time_written_to_sqlite_reads_back_as_the_same_instant_in_utc(instant: datetime) -> None:
    engine = create_engine("sqlite://")
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
    )
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), {"id": 1, "at": instant})
        stored = connection.execute(text("SELECT at FROM t")).scalar_one()
        read = connection.execute(select(table.c.at)).scalar_one()
    assert read == instant and read.tzinfo is UTC
    assert read == _general(stored)


# What SQLAlchemy writes, what SQLite's own functions write, and other writers' shapes.
_SHAPES = [
    "2026-01-01 00:00:07.000000", "2026-01-01 00:00:07", "2026-01-01 00:00:07.5",
    "2026-01-01", "2026-01-01T00:00:07", "2026-01-01 00:00:07+02:00", "2026-01-01 00:00:07Z",
]  # fmt: skip


@given(stored=st.sampled_from(_SHAPES) | st.text(max_size=30))
def test_the_fast_read_of_any_stored_text_is_the_general_reads_answer(stored: str) -> None:
    """Whatever text the column holds (another writer's format, or garbage), the fast path
    answers as the general one does: the same time, or the same refusal."""
    try:
        expected: Any = _general(stored)
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        got: Any = _FAST(stored)
    except (TypeError, ValueError) as exc:
        got = type(exc)
    assert got == expected
    assert _FAST(None) is None
