"""How an append reaches the database: on PostgreSQL the chain's lock and its head in one
round trip (`audit_chain_head`, migration 0029) and the events with their tree nodes in
another; and a second appender, waiting for the lock, follows the first's events."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from records import audit
from records.db import Database
from records.tables import EVENTS, NODES
from tests.helpers import Meanwhile, postgresql_only, statements_sent


def received(n: int) -> audit.NewEvent:
    return audit.NewEvent(actor="poller:x", role="integration", action="post.received",
                          payload={"n": n})  # fmt: skip


def test_an_append_takes_two_round_trips_on_postgresql(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock and the head in one statement, the events and their tree nodes in another
    (SQLite, in the process, reads the head and inserts each table on its own)."""
    monkeypatch.setattr(audit, "_edge", audit._Edge())  # this test's process, its own edge
    with database.write() as connection:
        audit.append(connection, received(0))  # the edge is this process's from here on
    with statements_sent(database) as sent, database.write() as connection:
        audit.append_many(connection, [received(1), received(2), received(3)])
    expected = 2 if database.dialect == "postgresql" else 3
    assert len(sent) == expected, sent
    with database.engine.connect() as connection:
        seqs = connection.execute(select(EVENTS.c.seq).order_by(EVENTS.c.seq)).scalars().all()
        nodes = connection.execute(select(NODES.c.level, NODES.c.idx)).all()
        assert seqs == [1, 2, 3, 4]
        assert len(nodes) == 2 * 4 - 1  # every node of the tree of four leaves
    with database.read_session() as session:
        assert audit.verify(session).ok


def test_an_append_waiting_for_the_chain_follows_the_one_it_waited_for(
    database: Database,
) -> None:
    """The second appender waits for the first's lock, and its head is read after the wait:
    it sees the first's events, committed while it waited (a read from before the wait
    would follow the same head twice, and the second `seq` would clash)."""
    postgresql_only(database)
    with database.write() as first:
        audit.append_many(first, [received(1), received(2)])

        def second() -> list[audit.Appended]:
            with database.write() as connection:
                return audit.append_many(connection, [received(3)])

        waiting = Meanwhile(second, seconds=0.5)
        assert (waiting.outcome, waiting.error) == (None, None), "it did not wait"
    appended: list[audit.Appended] = waiting.done().outcome
    assert waiting.error is None, waiting.error
    assert [event.seq for event in appended] == [3]
    with database.read_session() as session:
        result = audit.verify(session)
        assert (result.ok, result.events_checked) == (True, 3)
