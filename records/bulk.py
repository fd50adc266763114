"""Many rows in one statement, written the way each database takes them best (the ingest's
batches, `records.ingest`, and the audit record's).

On PostgreSQL a batch travels as one JSON document, read on the server as rows of the
table's own type (`json_populate_recordset`): the statement's text is short and the same
for every batch, so neither SQLAlchemy nor psycopg re-reads it, and the rows are written
by orjson, in C. (A multi-row `VALUES` of a hundred posts is two thousand placeholders
that psycopg re-parses in Python for every batch; arrays per column are dumped element by
element in Python: each was most of the ingest's time.) On SQLite the
same document is read by `json_each`, which spares SQLAlchemy converting every value of
every row in Python.

A look-up by a list of keys (`among`) is a semi-join on the keys: on PostgreSQL given as one
array per column, on SQLite as one JSON document read by `json_each` (building `a = ? AND b
IN (...)` per leading value in SQLAlchemy was a third of the ingest's time).
"""

from __future__ import annotations

from collections.abc import Callable
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
    true,
    tuple_,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Insert


def planned_for_each_batch(connection: Connection) -> None:
    """Until the transaction ends, PostgreSQL plans each statement for the batch at hand,
    and finds a batch's rows by their index, key by key.

    A prepared statement (psycopg prepares one run five times) is otherwise planned once
    for arrays of any length, and that plan may read whole tables where one batch's keys
    need a few index probes (seen: 160 ms for a look-up that takes one). And the planner's
    cost model prices an index probe as a read from disk, so it answers a hundred keys by
    hashing the whole table until the table is a few hundred thousand rows (seen: the
    conversations by their roots, the author's earlier texts, the updates of identities
    and conversations, 3 to 10 ms a batch at 20,000 rows and growing with the table). Without
    hash and merge joins, a batch's keys drive the index: its cost is the batch's, never
    the table's (tests/test_ingest_plans.py)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_BATCH_PLANS)


_BATCH_PLANS = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
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
    statement = _insert(connection.dialect.name, table, tuple(rows[0]), unique)
    result = connection.execute(statement, _parameters(connection, rows))
    return {tuple(row[1:]): int(row[0]) for row in result}


def insert_ids(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` (each with the same columns); their new ids, in the rows' order."""
    if not rows:
        return []
    # Ids come from the sequence (the rowid on SQLite) in the order the rows are inserted,
    # which `ORDER BY` of the rows' positions fixes: the ids sorted are the rows' ids in
    # order (SQLAlchemy's own reasoning for `sort_by_parameter_order` on PostgreSQL).
    statement = _insert(connection.dialect.name, table, tuple(rows[0]), ())
    ids = connection.execute(statement, _parameters(connection, rows)).scalars()
    return sorted(int(i) for i in ids)


def insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (each with the same columns)."""
    if rows:
        statement = _insert(connection.dialect.name, table, tuple(rows[0]), None)
        connection.execute(statement, _parameters(connection, rows))


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


@lru_cache(maxsize=64)
def _insert(
    dialect: str, table: Table, columns: tuple[str, ...], unique: tuple[str, ...] | None
) -> Insert:
    """INSERT of rows with `columns`; with `unique`, skipping a row whose unique columns
    are stored and returning the id and those columns of each row inserted (with `()`, the
    id alone; with None, nothing)."""
    returned = () if unique is None else (table.c.id, *(table.c[name] for name in unique))
    source = _rows_of(dialect, table)
    ordered = (
        select(*(source.c[name] for name in columns))
        .where(true())  # (SQLite reads `ON CONFLICT` after a SELECT without WHERE as a join's)
        .order_by(source.c.ordinality)
    )
    if dialect == "postgresql":
        pg = postgresql.insert(table).from_select(list(columns), ordered)
        if unique:
            pg = pg.on_conflict_do_nothing(index_elements=list(unique))
        return pg.returning(*returned) if returned else pg
    lite = sqlite.insert(table).from_select(list(columns), ordered)
    if unique:
        lite = lite.on_conflict_do_nothing(index_elements=list(unique))
    return lite.returning(*returned) if returned else lite


@lru_cache(maxsize=64)
def _rows_of(dialect: str, table: Table) -> Any:
    """The batch's JSON as rows with `table`'s columns (a column the rows do not name is
    NULL there), each with its position in the batch (`ordinality`): on PostgreSQL
    `json_populate_recordset(NULL::table, :rows) WITH ORDINALITY`, rows of the table's own
    type; on SQLite each column taken out of `json_each(:rows)` (stored as SQLAlchemy
    stores it, `_parameters` writes times so)."""
    names = [column.name for column in table.columns]
    if dialect == "postgresql":
        return (
            func.json_populate_recordset(literal_column(f"NULL::{table.name}"), bindparam(_ROWS))
            .table_valued(*names, with_ordinality="ordinality")
            .alias("source")
        )
    each = func.json_each(bindparam(_ROWS)).table_valued("key", "value")
    return select(
        *(func.json_extract(each.c.value, f"$.{name}").label(name) for name in names),
        each.c.key.label("ordinality"),
    ).subquery("source")


_ROWS = "rows"


def _parameters(connection: Connection, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Rows as the statements of `_insert` and `update` take them: one JSON document. A
    time is written with its offset on PostgreSQL (RFC 3339), as SQLAlchemy stores it on
    SQLite (UTC wall time); one without a zone is refused, as `records.types` refuses it.
    Every row names the same columns (the statement is made from the first one's)."""
    names = rows[0].keys()
    if any(row.keys() != names for row in rows):
        raise ValueError("the rows of a batch name different columns")
    write_time = _pg_time if connection.dialect.name == "postgresql" else _sqlite_time
    try:
        return {_ROWS: orjson.dumps(rows, default=write_time, option=_PASS_TIMES).decode()}
    except orjson.JSONEncodeError as error:  # the reason `write_time` gave, if it gave one
        raise (error.__cause__ or error) from None


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
