"""How an append reaches the database: on PostgreSQL the chain's lock, its head and the
tree's right edge in one round trip (`audit_chain_head`, migration 0029) and the events
with their tree nodes in another; and a second appender, waiting for the lock, follows
the first's events."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from records import audit, merkle
from records.db import Database
from records.tables import EVENTS, NODES
from tests.helpers import Meanwhile, postgresql_only, statements_sent


def received(n: int) -> audit.NewEvent:
    return audit.NewEvent(actor="poller:x", role="integration", action="post.received",
                          payload={"n": n})  # fmt: skip


@pytest.mark.parametrize("last", ["this process", "another process"])
def test_an_append_takes_two_round_trips_on_postgresql(
    database: Database, monkeypatch: pytest.MonkeyPatch, last: str
) -> None:
    """The lock, the head and (when another process appended last) the tree's right edge
    in one statement, the events and their tree nodes in another (SQLite, in the process,
    reads the head, the edge when it must, and inserts each table on its own)."""
    monkeypatch.setattr(audit, "_edge", audit._Edge())  # this test's process, its own edge
    with database.write() as connection:
        audit.append_many(connection, [received(0), received(1), received(2)])
    if last == "another process":
        monkeypatch.setattr(audit, "_edge", audit._Edge())
    with statements_sent(database) as sent, database.write() as connection:
        audit.append_many(connection, [received(3), received(4)])
    sqlite = 3 if last == "this process" else 4
    assert len(sent) == (2 if database.dialect == "postgresql" else sqlite), sent
    with database.engine.connect() as connection:
        seqs = connection.execute(select(EVENTS.c.seq).order_by(EVENTS.c.seq)).scalars().all()
        nodes = connection.execute(select(NODES.c.level, NODES.c.idx)).all()
        assert seqs == [1, 2, 3, 4, 5]
        assert len(nodes) == 5 + 2 + 1  # every perfect subtree of five leaves
    with database.read_session() as session:
        assert audit.verify(session).ok
        assert audit.verify(session).events_checked == 5


def test_the_edge_read_with_the_head_is_the_tree_s_own_at_every_size(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audit_chain_head` answers, to a process that does not know the head, the tree's
    right edge at every size from 1 to 40: the perfect subtrees `records.merkle` covers it
    with, with the hashes stored for them."""
    postgresql_only(database)
    for size in range(1, 41):
        with database.write() as connection:
            audit.append(connection, received(size))
        with monkeypatch.context() as process, database.write() as connection:
            process.setattr(audit, "_edge", audit._Edge())  # another: it knows no head
            seq, _, edge = audit._locked_head(connection)
            wanted = merkle.perfect_subtrees(0, size)
            assert seq == size and edge is not None and sorted(edge) == sorted(wanted)
            assert [edge[key] for key in wanted] == audit._stored_nodes(connection, wanted)


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
