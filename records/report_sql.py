"""The SQL that every report is built from, compiled per database (SQLite, PostgreSQL):
the seconds between two timestamps, a timestamp's UTC day, percentiles by rank (the p-th
percentile of n values is the smallest value whose rank, 1..n ascending, is at least
p * n: the nearest-rank method, by window functions both databases have), and the window
a report covers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Date, Float, String, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from records.tables import POSTS

PERCENTILES = (0.5, 0.9)


class seconds_between(FunctionElement[float]):
    """Seconds from the first timestamp to the second."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


class utc_day(FunctionElement[Any]):
    """The UTC calendar day of a timestamp, as a date (`str` of it is 'YYYY-MM-DD'). On
    PostgreSQL a cast to `date`: `to_char` formatting every row took a third of a report's
    scan of the posts (issue 24, `/kpis` at 10,000 drafts)."""

    type = Date()
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _day_sqlite(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"  # stored as UTC wall time


@compiles(utc_day, "postgresql")
def _day_postgresql(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


@dataclass(frozen=True)
class Window:
    since: datetime | None = None
    until: datetime | None = None
    channel: str | None = None

    def of(self, column: Any) -> list[ColumnElement[bool]]:
        where = []
        if self.since is not None:
            where.append(column >= self.since)
        if self.until is not None:
            where.append(column < self.until)
        return where

    def on_channel(self) -> list[ColumnElement[bool]]:
        return [POSTS.c.channel == self.channel] if self.channel else []


def percentiles(durations: Any, *groups: str) -> Any:
    """count, p50, p90 (and max) of `durations`' `seconds` column, per `groups` columns."""
    inner = durations.subquery("d")
    seconds = inner.c.seconds
    partition = [inner.c[g] for g in groups]
    ranked = select(
        *partition,
        seconds,
        func.row_number().over(partition_by=partition, order_by=seconds).label("rank"),
        func.count().over(partition_by=partition).label("n"),
    ).subquery("r")
    figures = [
        func.min(case((ranked.c.rank >= p * ranked.c.n, ranked.c.seconds))).label(
            f"p{int(p * 100)}"
        )
        for p in PERCENTILES
    ]
    keys = [ranked.c[g] for g in groups]
    return (
        select(
            *keys, func.count().label("count"), *figures, func.max(ranked.c.seconds).label("max")
        )
        .group_by(*keys)
        .order_by(*keys)
    )


def rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


class utc_hour(FunctionElement[Any]):
    """The UTC hour a timestamp falls in, as 'YYYY-MM-DD HH:00' text."""

    type = String()
    inherit_cache = True


@compiles(utc_hour, "sqlite")
def _hour_sqlite(element: utc_hour, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H:00', {compiler.process(element.clauses, **kw)})"


@compiles(utc_hour, "postgresql")
def _hour_postgresql(element: utc_hour, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00')"
