"""PostgreSQL's pooled connections (`records.db`): one the server closed is replaced before
a statement is sent on it, and a read holds no transaction open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from records.db import Database


@pytest.fixture
def database(postgres_admin: str | None) -> Iterator[Database]:
    if postgres_admin is None:
        pytest.skip("PostgreSQL not reachable (a failure under CI=true)")
    database = Database(postgres_admin)
    yield database
    database.dispose()


def _backend(connection: Connection) -> int:
    return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _end_session(admin_url: str, pid: int) -> None:
    """What a restart or an administrator does to a session: end it, and wait until its
    process is gone (it closes the socket as it goes)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the session did not end"
            time.sleep(0.01)


def test_a_connection_the_server_closed_is_replaced_before_a_read_uses_it(
    database: Database, postgres_admin: str
) -> None:
    first = asyncio.run(database.read(_backend))
    _end_session(postgres_admin, first)
    # The pool hands out the same connection unless it sees the server closed it.
    assert asyncio.run(database.read(_backend)) != first


def test_a_connection_the_server_closed_is_replaced_before_a_write_uses_it(
    database: Database, postgres_admin: str
) -> None:
    with database.write() as connection:
        first = _backend(connection)
    _end_session(postgres_admin, first)
    with database.write() as connection:
        assert _backend(connection) != first


def test_a_read_holds_no_transaction_open(database: Database) -> None:
    """Each statement of a read at READ COMMITTED has a snapshot of its own: a transaction
    around them would add a BEGIN and a ROLLBACK (two round trips) and hold nothing more."""

    def status(connection: Connection) -> psycopg.pq.TransactionStatus:
        connection.execute(text("SELECT 1")).scalar_one()
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        return driver.info.transaction_status

    assert asyncio.run(database.read(status)) is psycopg.pq.TransactionStatus.IDLE
    with database.write() as connection:  # a write's statements are one transaction
        assert status(connection) is psycopg.pq.TransactionStatus.INTRANS


def test_a_connection_with_something_else_to_read_is_kept(
    database: Database, postgres_admin: str
) -> None:
    """The server may send a live session something unasked (a notification here): it is
    asked once whether it is alive, and kept."""

    def listen(connection: Connection) -> int:
        connection.exec_driver_sql("LISTEN countersign_test")
        return _backend(connection)

    first = asyncio.run(database.read(listen))
    with psycopg.connect(postgres_admin, autocommit=True) as admin:
        admin.execute("NOTIFY countersign_test")
    time.sleep(0.2)
    assert asyncio.run(database.read(_backend)) == first
    with database.write() as connection:  # and handed out with no transaction begun
        assert _backend(connection) == first
