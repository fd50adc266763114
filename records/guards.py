"""The database's own guards on the audit trail (created by the migrations 0001 and 0010),
named here for whoever must step around them on purpose: the tests that play an attacker
with the database file or a superuser's rights, and the test cleanup between tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

POSTGRES_TRIGGERS = ("audit_events_append_only", "audit_events_no_truncate")
SQLITE_TRIGGERS = {
    "audit_events_no_update": "BEFORE UPDATE ON audit_events",
    "audit_events_no_delete": "BEFORE DELETE ON audit_events",
}


@contextmanager
def lifted(connection: Connection) -> Iterator[Connection]:
    """The guards off for this transaction's work, then on again, as someone with the
    rights to do so could (PostgreSQL: a table owner or superuser; SQLite: the file)."""
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        for trigger in POSTGRES_TRIGGERS:
            connection.exec_driver_sql(f"ALTER TABLE audit_events DISABLE TRIGGER {trigger}")
    else:
        for name in SQLITE_TRIGGERS:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    yield connection
    if postgres:
        for trigger in POSTGRES_TRIGGERS:
            connection.exec_driver_sql(f"ALTER TABLE audit_events ENABLE TRIGGER {trigger}")
    else:
        for name, when in SQLITE_TRIGGERS.items():
            connection.exec_driver_sql(
                f"CREATE TRIGGER {name} {when} "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )
