"""The database's own guards on the audit trail (migrations 0001, 0010 to 0014),
named here for whoever must step around them on purpose: the tests that play an attacker
with the database file or a superuser's rights, and the test cleanup between tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

# table -> its triggers (migrations 0001, 0010, 0011 and 0012)
POSTGRES_TRIGGERS = {
    "audit_events": ("audit_events_append_only", "audit_events_no_truncate"),
    "audit_nodes": ("audit_nodes_append_only", "audit_nodes_no_truncate"),
    "audit_checkpoints": ("audit_checkpoints_append_only", "audit_checkpoints_no_truncate"),
}
# An erasure (records.audit.erase) is the one UPDATE of an event the guard lets through.
_KEPT = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "draft_id",
    "version",
    "content_sha256",
    "payload_sha256",
    "prev_hash",
    "hash",
    "event_key",
)
SQLITE_ERASURE = "OLD.erased = 0 AND NEW.erased = 1 AND NEW.payload = '{}' AND " + " AND ".join(
    f"NEW.{c} IS OLD.{c}" for c in _KEPT
)
SQLITE_TRIGGERS = {
    "audit_events_no_update": ("audit_events", f"BEFORE UPDATE WHEN NOT ({SQLITE_ERASURE})"),
    "audit_events_no_delete": ("audit_events", "BEFORE DELETE"),
    "audit_nodes_no_update": ("audit_nodes", "BEFORE UPDATE"),
    "audit_nodes_no_delete": ("audit_nodes", "BEFORE DELETE"),
    "audit_checkpoints_no_update": ("audit_checkpoints", "BEFORE UPDATE"),
    "audit_checkpoints_no_delete": ("audit_checkpoints", "BEFORE DELETE"),
}


@contextmanager
def lifted(connection: Connection) -> Iterator[Connection]:
    """The guards off for this transaction's work, then on again, as someone with the
    rights to do so could (PostgreSQL: a table owner or superuser; SQLite: the file)."""
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        for table, triggers in POSTGRES_TRIGGERS.items():
            for trigger in triggers:
                connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    else:
        for name in SQLITE_TRIGGERS:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    yield connection
    if postgres:
        for table, triggers in POSTGRES_TRIGGERS.items():
            for trigger in triggers:
                connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
    else:
        for name, (table, when) in SQLITE_TRIGGERS.items():
            event, _, condition = when.partition(" WHEN ")
            connection.exec_driver_sql(
                f"CREATE TRIGGER {name} {event} ON {table} "
                + (f"WHEN {condition} " if condition else "")
                + f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
