"""Small helpers shared by tests that run processes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from records.db import Database


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held open together so they are distinct)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


@contextmanager
def around_the_trigger(database: Database) -> Iterator[Connection]:
    """A connection that can change audit_events as a database superuser could, with the
    PostgreSQL append-only trigger switched off (tampering, for verify to catch)."""
    with database.engine.begin() as conn:
        postgres = database.dialect == "postgresql"
        trigger = "audit_events_append_only"
        if postgres:
            conn.exec_driver_sql(f"ALTER TABLE audit_events DISABLE TRIGGER {trigger}")
        yield conn
        if postgres:
            conn.exec_driver_sql(f"ALTER TABLE audit_events ENABLE TRIGGER {trigger}")
