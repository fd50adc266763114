"""Many rows in one statement, written the way each database takes them best (the ingest's
batches, `records.ingest`, and the audit record's).

On PostgreSQL a batch travels as one JSON document, read on the server as rows of the
table's own type (`json_populate_recordset`): the statement's text is short and the same
for every batch, so neither SQLAlchemy nor psycopg re-reads it, and the rows are written
by orjson, in C. (A multi-row `VALUES` of a hundred posts is two thousand placeholders
that psycopg re-parses in Python for every batch; arrays per column are dumped element by
element in Python: each was most of the ingest's time.) On SQLite, in the process, there is
nothing to re-parse: the rows' values are bound to a multi-row `VALUES`, each written as
SQLAlchemy stores it (`_sqlite_value`). (Read from a JSON document by `json_extract`, a
hundred posts' 33 columns cost 3.4 ms in SQLite, a parse of the row's text per value;
bound, 0.4 ms.) An update reads its rows from the JSON document on both.

A look-up by a list of keys (`among`) is a semi-join on the keys: on PostgreSQL given as one
array per column, on SQLite as one JSON document read by `json_each` (building `a = ? AND b
IN (...)` per leading value in SQLAlchemy was a third of the ingest's time).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Insert

_ROWS = "rows"  # the name a batch's JSON document is bound as


@contextmanager
def planned_for_each_batch(connection: Connection) -> Iterator[None]:
    """Within the block, PostgreSQL plans each of the block's statements for the batch at
    hand, and finds a batch's rows by their index, key by key.

    psycopg otherwise prepares a statement run five times, and the server then plans it
    once for arrays of any length: that plan may read whole tables where one batch's keys
    need a few index probes (seen: 160 ms for a look-up that takes one). So the block's
    statements are not prepared; each is planned with its own keys. (Not
    `plan_cache_mode = force_custom_plan`: that re-plans the foreign keys' checks too, a
    plan per inserted row, and tripled their cost: 33 µs a check against 11.)

    And the planner's cost model prices an index probe as a read from disk, so it answers a
    hundred keys by hashing the whole table until the table is a few hundred thousand rows
    (seen: the conversations by their roots, the author's earlier texts, the updates of
    identities and conversations, 3 to 10 ms a batch at 20,000 rows and growing with the
    table). Without hash and merge joins, until the transaction ends, a batch's keys drive
    the index: its cost is the batch's, never the table's (tests/test_ingest_plans.py)."""
    if connection.dialect.name != "postgresql":
        yield
        return
    driver = connection.connection.driver_connection
    threshold = driver.prepare_threshold  # type: ignore[union-attr]
    driver.prepare_threshold = None  # type: ignore[union-attr]
    try:
        connection.execute(_BATCH_PLANS)
        yield
    finally:
        driver.prepare_threshold = threshold  # type: ignore[union-attr]


_BATCH_PLANS = text(
    "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
)


def among(
    connection: Connection, columns: tuple[Column[Any], ...], keys: set[tuple[Any, ...]]
) -> Any:
    """`columns` hold one of `keys` (tuples of their values): a condition for a query's
    WHERE, answered by an index on the columns."""
    if connection.dialect.name == "postgresql":
        values = list(zip(*sorted(keys), strict=True)) if keys else [() for _ in columns]
        given = (
            func.unnest(*(
                bindparam(f"key_{n}", list(column_values), type_=postgresql.ARRAY(column.type))
                for n, (column, column_values) in enumerate(zip(columns, values, strict=True))
            ))
            .table_valued(*(f"key_{n}" for n in range(len(columns))))
            .render_derived(name="keys")
        )  # fmt: skip
        return tuple_(*columns).in_(select(*given.c))
    # SQLite: the keys as one JSON document, read by `json_each`; a list of row values
    # `IN` a subquery is answered by the index on the columns.
    document = orjson.dumps(sorted(keys)).decode()
    each = func.json_each(bindparam("keys", document, unique=True)).table_valued("value")
    listed = select(*(func.json_extract(each.c.value, f"$[{n}]") for n in range(len(columns))))
    return tuple_(*columns).in_(listed)


def insert_new(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    unique: tuple[str, ...],
) -> dict[tuple[Any, ...], int]:
    """Insert `rows` (each with the same columns), skipping any whose `unique` columns
    another writer stored first; the ids of those inserted, by their unique columns."""
    if not rows:
        return {}
    # In the unique key's order: two writers inserting overlapping keys wait for each other
    # in the same order, never each for the other (a deadlock).
    rows = sorted(rows, key=lambda row: tuple(row[name] for name in unique))
    return {tuple(row[1:]): int(row[0]) for row in _inserted(connection, table, rows, unique)}


def insert_ids(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` (each with the same columns); their new ids, in the rows' order."""
    if not rows:
        return []
    # Ids come from the sequence (the rowid on SQLite) in the order the rows are inserted,
    # which `ORDER BY` of the rows' positions fixes on PostgreSQL and the order of `VALUES`
    # (and of its statements) on SQLite: the ids sorted are the rows' ids in order
    # (SQLAlchemy's own reasoning for `sort_by_parameter_order` on PostgreSQL).
    return sorted(int(row[0]) for row in _inserted(connection, table, rows, ()))


def insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (each with the same columns)."""
    if rows:
        _inserted(connection, table, rows, None)


def insert_each(connection: Connection, batches: list[tuple[Table, list[dict[str, Any]]]]) -> None:
    """`insert` for the rows of several tables (each table's rows with the same columns),
    in one statement on PostgreSQL: every table's INSERT but the last is a data-modifying
    `WITH` of the last's, one round trip for all (the audit record's events and their tree
    nodes, on every transition). The tables must not refer to each other: PostgreSQL runs
    the parts in no set order. A column the rows do not name takes the database's default
    there, not SQLAlchemy's (which it does not fill in for a `WITH`): the rows name every
    column that has no default in the schema. On SQLite, in the process, and for one table
    with rows, each table's by `insert`."""
    batches = [(table, rows) for table, rows in batches if rows]
    if connection.dialect.name != "postgresql" or len(batches) < 2:
        for table, rows in batches:
            insert(connection, table, rows)
        return
    statement = _pg_insert_each(tuple((table, _columns(rows)) for table, rows in batches))
    connection.execute(statement, {
        f"{_ROWS}_{n}": _document(connection, rows) for n, (_, rows) in enumerate(batches)
    })  # fmt: skip


def update(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    values: Callable[[Any], dict[str, Any]],
    only_if: Callable[[Any], ColumnElement[bool]] | None = None,
) -> None:
    """Update the rows of `table` whose ids `rows` give, from `rows` (each with the same
    keys, named as `table`'s columns are, `id` among them). `values` (and `only_if`, a
    further condition) are given the rows as a source whose `.c` holds their columns, e.g.
    `values=lambda new: {"seen_at": new.c.seen_at}`."""
    if not rows:
        return
    source = _rows_of(connection.dialect.name, table)
    where = table.c.id == source.c.id
    if only_if is not None:
        where = and_(where, only_if(source))
    statement = sql_update(table).where(where).values(values(source))
    connection.execute(statement, _parameters(connection, rows))


def _inserted(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    unique: tuple[str, ...] | None,
) -> list[Any]:
    """INSERT `rows`, in their order; with `unique`, skipping a row whose unique columns
    are stored and returning the id and those columns of each row inserted (with `()`, the
    id alone; with None, nothing)."""
    columns = _columns(rows)
    if connection.dialect.name == "postgresql":
        statement = _pg_insert(table, columns, unique)
        result = connection.execute(statement, _parameters(connection, rows))
        return list(result) if unique is not None else []
    inserted: list[Any] = []
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    most = min(_ROWS_AT_MOST, driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(columns))
    start = 0
    while start < len(rows):
        # A statement per row count, cached and prepared (and kept by each connection): in
        # multiples of `_STEP` and a rest, the counts are few (a page of 100 posts: two).
        count = min(len(rows) - start, most)
        count -= count % _STEP if count >= _STEP else 0
        chunk = rows[start : start + count]
        start += count
        sql = _sqlite_insert(connection.dialect, table, columns, count, unique)
        values = tuple(_sqlite_value(row[name]) for row in chunk for name in columns)
        result = connection.exec_driver_sql(sql, values)
        inserted += result.all() if unique is not None else []
    return inserted


@lru_cache(maxsize=16)
def _pg_insert_each(shapes: tuple[tuple[Table, tuple[str, ...]], ...]) -> Insert:
    """One INSERT per (table, columns), each reading its own JSON document (`rows_0`,
    `rows_1`, ...): the last the statement, the others its `WITH`."""
    *before, (table, columns) = shapes
    statement = _pg_insert(table, columns, None, f"{_ROWS}_{len(before)}", defaults=False)
    for n, (earlier, its_columns) in enumerate(before):
        written = _pg_insert(earlier, its_columns, None, f"{_ROWS}_{n}", defaults=False)
        statement = statement.add_cte(written.cte(f"written_{n}"))
    return statement


@lru_cache(maxsize=64)
def _pg_insert(
    table: Table,
    columns: tuple[str, ...],
    unique: tuple[str, ...] | None,
    name: str = _ROWS,
    *,
    defaults: bool = True,
) -> Insert:
    """INSERT of a batch's JSON document's rows (`_rows_of`, bound as `name`), in their
    order; a column they do not name takes its default in Python, or without `defaults`
    the database's own."""
    source = _rows_of("postgresql", table, name)
    ordered = select(*(source.c[column] for column in columns)).order_by(source.c.ordinality)
    statement = postgresql.insert(table).from_select(
        list(columns), ordered, include_defaults=defaults
    )
    if unique:
        statement = statement.on_conflict_do_nothing(index_elements=list(unique))
    if unique is None:
        return statement
    return statement.returning(table.c.id, *(table.c[name] for name in unique))


@lru_cache(maxsize=256)
def _sqlite_insert(
    dialect: Any, table: Table, columns: tuple[str, ...], count: int, unique: tuple[str, ...] | None
) -> str:
    """INSERT of `count` rows of `columns` as positional values, in their order. (Every name
    is one of the table's own, `table.c` says, quoted; every value is bound.)"""
    quote = dialect.identifier_preparer.quote

    def listed(names: tuple[str, ...]) -> str:
        return ", ".join(quote(table.c[name].name) for name in names)

    row = f"({', '.join('?' for _ in columns)})"
    sql = f"INSERT INTO {quote(table.name)} ({listed(columns)}) VALUES "  # noqa: S608 - as above
    sql += ", ".join(row for _ in range(count))
    if unique:
        sql += f" ON CONFLICT ({listed(unique)}) DO NOTHING"
    if unique is not None:
        sql += f" RETURNING {listed(('id', *unique))}"
    return sql


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it on SQLite: a time as UTC wall time (`_sqlite_time`), a
    flag as 1 or 0; anything else as `json_extract` reads orjson's writing of it, as an
    update's rows travel (`_parameters`): an enum as its value, a list or a dict as its JSON
    text."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float:
        return value
    if kind is datetime:
        return _sqlite_time(value)
    if kind is bool:
        return int(value)
    written = _json(value, _sqlite_time)
    if written[:1] in (b"[", b"{"):
        return written.decode()
    read = orjson.loads(written)
    return int(read) if type(read) is bool else read


_ROWS_AT_MOST = 128  # in one statement on SQLite
_STEP = 16


@lru_cache(maxsize=64)
def _rows_of(dialect: str, table: Table, name: str = _ROWS) -> Any:
    """The batch's JSON as rows with `table`'s columns (a column the rows do not name is
    NULL there), each with its position in the batch (`ordinality`): on PostgreSQL
    `json_populate_recordset(NULL::table, :rows) WITH ORDINALITY`, rows of the table's own
    type; on SQLite each column taken out of `json_each(:rows)` (stored as SQLAlchemy
    stores it, `_parameters` writes times so)."""
    names = [column.name for column in table.columns]
    if dialect == "postgresql":
        return (
            func.json_populate_recordset(literal_column(f"NULL::{table.name}"), bindparam(name))
            .table_valued(*names, with_ordinality="ordinality")
            .alias("source")
        )
    each = func.json_each(bindparam(name)).table_valued("key", "value")
    return select(
        *(func.json_extract(each.c.value, f"$.{column}").label(column) for column in names),
        each.c.key.label("ordinality"),
    ).subquery("source")


def _parameters(connection: Connection, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Rows as the statements of `_pg_insert` and `update` take them: one JSON document,
    bound as `_ROWS`."""
    return {_ROWS: _document(connection, rows)}


def _document(connection: Connection, rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON document. A time is written with its offset on PostgreSQL (RFC
    3339), as SQLAlchemy stores it on SQLite (UTC wall time); one without a zone is refused,
    as `records.types` refuses it. Every row names the same columns (the statement is made
    from the first one's)."""
    _columns(rows)
    write_time = _pg_time if connection.dialect.name == "postgresql" else _sqlite_time
    return _json(rows, write_time).decode()


def _json(value: Any, write_time: Callable[[Any], str]) -> bytes:
    """`value` as orjson writes it, each time by `write_time` (which refuses anything else
    orjson cannot write, and a time without a zone)."""
    try:
        return orjson.dumps(value, default=write_time, option=_PASS_TIMES)
    except orjson.JSONEncodeError as error:  # the reason `write_time` gave, if it gave one
        raise (error.__cause__ or error) from None


def _columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The columns every row of a batch names (a statement is made from the first one's)."""
    names = rows[0].keys()
    if any(row.keys() != names for row in rows):
        raise ValueError("the rows of a batch name different columns")
    return tuple(names)


_PASS_TIMES = orjson.OPT_PASSTHROUGH_DATETIME  # times go through `default`


def _pg_time(value: Any) -> str:
    return _aware(value).isoformat()


def _sqlite_time(value: Any) -> str:
    return _aware(value).astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _aware(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"a row holds no {type(value).__name__} ({value!r})")
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value
