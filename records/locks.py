"""Writers that must take turns, on PostgreSQL: transaction-scoped advisory locks, in one
key space of their own (two keys: the kind of work, then what it is about), so each kind
is named once here and no two kinds ever share a lock by chance.

SQLite needs none of them: it has one writer at a time (`records.db` begins every write
transaction `BEGIN IMMEDIATE`). The audit record's own lock (`records.audit`) is of the
one-key space, which PostgreSQL keeps apart from this one.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from sqlalchemy import Table, select, text
from sqlalchemy.engine import Connection

from records.fields import Channel


class Turn(IntEnum):
    """A kind of work whose writers take turns (the advisory lock's first key)."""

    ROUTING = 23  # a team's round, or an agent's presence changing (`records.routing`)
    INGEST = 24  # storing a channel's inbound posts (`records.ingest`)
    HOLDS = 25  # placing a legal hold, and erasing by the holds in place (`records.retention`)


def take(connection: Connection, turn: Turn, key: int, *, shared: bool = False) -> None:
    """Wait for `turn` on `key` until the transaction ends (with `shared`, alongside others
    holding it shared, and only against one holding it alone)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_SHARED if shared else _ALONE, {"turn": int(turn), "key": key})


def take_named(connection: Connection, turn: Turn, names: Iterable[str]) -> None:
    """Wait for `turn` on each of `names` (PostgreSQL's `hashtext` of the name as the key),
    in their order sorted, so two writers naming the same ones never wait for each other
    crosswise."""
    if connection.dialect.name == "postgresql":
        for name in sorted(set(names)):
            connection.execute(_ALONE_NAMED, {"turn": int(turn), "name": name})


def hold_off_ingest(connection: Connection) -> None:
    """Every channel's ingest waits until this transaction ends (and this one for an ingest
    in flight): for a change of who a customer is (a link, an unlink, an erasure), which
    an ingest that read the author's identity before it would otherwise undo or miss (a
    post stored on a customer just merged away, an erased profile written back)."""
    take_named(connection, Turn.INGEST, (channel.value for channel in Channel))


def rows(connection: Connection, table: Table, *where: Any, limit: int | None = None) -> list[int]:
    """Lock the rows of `table` matching `where` until the transaction ends, in id order;
    their ids. Every writer of many rows of one table (a routing round, an erasure, a link
    of two customers) locks them so before it changes them: in an order of their own (an
    UPDATE's is its plan's), two such writers could each hold a row the other waits for."""
    query = select(table.c.id).where(*where).order_by(table.c.id).limit(limit)
    return [int(row_id) for row_id in connection.execute(query.with_for_update()).scalars()]


_ALONE = text("SELECT pg_advisory_xact_lock(:turn, :key)")
_SHARED = text("SELECT pg_advisory_xact_lock_shared(:turn, :key)")
_ALONE_NAMED = text("SELECT pg_advisory_xact_lock(:turn, hashtext(:name))")
