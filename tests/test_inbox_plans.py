"""A person's unread count and unread list read their unread notifications by a partial
index (`ix_notifications_unread`), not every notification they ever had: a busy reviewer
has thousands, read once and kept. On SQLite and on PostgreSQL with the table grown and
analyzed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import Connection

from records import notifications
from records.db import Database
from records.tables import NOTIFICATIONS
from tests.helpers import explained

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _many(connection: Connection, people: int = 40, each: int = 500) -> None:
    """`each` notifications for each of `people`, all but a few read."""
    rows: list[dict[str, Any]] = [
        {"recipient": f"reviewer{p}", "event": "review.requested", "message": "a draft waits",
         "event_key": f"k{p}-{n}", "in_app": True, "created_at": T0,
         "read_at": None if n % 100 == 0 else T0}
        for p in range(people) for n in range(each)
    ]  # fmt: skip
    connection.execute(insert(NOTIFICATIONS), rows)


def plans(connection: Connection, explain: str) -> list[str]:
    """The plans of the inbox's statements: the unread list, then the unread count."""
    with explained(connection, explain) as found:
        inbox = notifications.inbox(connection, "reviewer7", unread_only=True, limit=50)
    assert inbox.unread == 5 and len(inbox.items) == 5
    return [plan for _, plan in found]


def test_the_unread_notifications_are_read_by_their_own_index(database: Database) -> None:
    with database.engine.connect() as connection:
        _many(connection)
        sqlite = database.dialect == "sqlite"
        if not sqlite:
            connection.execute(text("ANALYZE notifications"))
        found = plans(connection, "EXPLAIN QUERY PLAN" if sqlite else "EXPLAIN")
        connection.rollback()
    assert len(found) == 2 and all("ix_notifications_unread" in plan for plan in found), found
