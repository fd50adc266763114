"""The shared column types: a UTC time reads back as the instant written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.dialects import sqlite

from records.types import UTCDateTime

_ZONES = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_INSTANTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_ZONES
)


@given(instant=_INSTANTS)
def test_a_time_written_to_sqlite_reads_back_as_the_same_instant_in_utc(instant: datetime) -> None:
    engine = create_engine("sqlite://")
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
    )
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), {"id": 1, "at": instant})
        read = connection.execute(select(table.c.at)).scalar_one()
    assert read == instant and read.tzinfo is UTC


@given(naive=st.datetimes(), fold=st.sampled_from([0, 1]))
def test_a_wall_time_is_labelled_utc_and_nothing_else_changes(naive: datetime, fold: int) -> None:
    """SQLite's wall times are labelled UTC by `datetime.combine` (a sixth of `replace`'s
    cost): every field the same, `fold` too."""
    naive = naive.replace(fold=fold)
    read = UTCDateTime().process_result_value(naive, sqlite.dialect())
    expected = naive.replace(tzinfo=UTC)
    assert read == expected and read is not None
    assert (read.tzinfo, read.fold, read.isoformat()) == (UTC, expected.fold, expected.isoformat())
