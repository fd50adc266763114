"""PostgreSQL's pooled connections (`records.db`): one that is gone (the server closed it,
or a middlebox dropped it without a word) is replaced before a statement is sent on it,
and a read holds no transaction open."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from records import db
from records.db import Database


@pytest.fixture
def admin_url(postgres_admin: str | None) -> str:
    if postgres_admin is None:
        pytest.skip("PostgreSQL not reachable (a failure under CI=true)")
    return postgres_admin


@contextmanager
def _opened(url: str) -> Iterator[Database]:
    database = Database(url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def database(admin_url: str) -> Iterator[Database]:
    with _opened(admin_url) as database:
        yield database


def _backend(connection: Connection) -> int:
    return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _driver(connection: Connection) -> psycopg.Connection[Any]:
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


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
    database: Database, admin_url: str
) -> None:
    first = asyncio.run(database.read(_backend))
    _end_session(admin_url, first)
    # The pool hands out the same connection unless it sees the server closed it.
    assert asyncio.run(database.read(_backend)) != first


def test_a_connection_the_server_closed_is_replaced_before_a_write_uses_it(
    database: Database, admin_url: str
) -> None:
    with database.write() as connection:
        first = _backend(connection)
    _end_session(admin_url, first)
    with database.write() as connection:
        assert _backend(connection) != first


def test_a_read_holds_no_transaction_open(database: Database) -> None:
    """Each statement of a read at READ COMMITTED has a snapshot of its own: a transaction
    around them would add a BEGIN and a ROLLBACK (two round trips) and hold nothing more."""

    def status(connection: Connection) -> psycopg.pq.TransactionStatus:
        connection.execute(text("SELECT 1")).scalar_one()
        return _driver(connection).info.transaction_status

    assert asyncio.run(database.read(status)) is psycopg.pq.TransactionStatus.IDLE
    with database.write() as connection:  # a write's statements are one transaction
        assert status(connection) is psycopg.pq.TransactionStatus.INTRANS


def test_a_connection_with_something_else_to_read_is_kept(
    database: Database, admin_url: str
) -> None:
    """The server may send a live session something unasked (a notification here): it is
    asked once whether it is alive, and kept."""

    heard: list[str] = []

    def listen(connection: Connection) -> int:
        _driver(connection).add_notify_handler(lambda notify: heard.append(notify.channel))
        connection.exec_driver_sql("LISTEN countersign_test")
        return _backend(connection)

    def notify() -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("NOTIFY countersign_test")
        time.sleep(0.2)

    first = asyncio.run(database.read(listen))
    notify()
    assert asyncio.run(database.read(_backend)) == first
    assert heard == ["countersign_test"]  # it was there to read: the connection was asked
    notify()
    with database.write() as connection:  # handed out with no transaction begun
        assert _driver(connection).info.transaction_status is psycopg.pq.TransactionStatus.IDLE
        assert _backend(connection) == first
    assert heard == ["countersign_test"] * 2


class _Middlebox:
    """A TCP hop to PostgreSQL that can forget its connections without a word, as a NAT or
    a load balancer does after its idle timeout: after `forget()`, the next packet on one
    of them is answered with a reset and nothing reaches the server."""

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._target = port
        self._forgotten: set[socket.socket] = set()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def forget(self) -> None:
        self._forgotten.update(self._open)

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._target))
            self._open.append(client)
            for source, sink in ((client, server), (server, client)):
                pump = threading.Thread(target=self._pump, args=(client, source, sink), daemon=True)
                pump.start()

    def _pump(self, client: socket.socket, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                if data and client not in self._forgotten:
                    sink.sendall(data)
                    continue
                if data:  # a forgotten connection: reset, as the middlebox would
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                sink.close()
                source.close()
            except OSError:
                pass
            return


def test_a_connection_dropped_without_a_word_is_replaced_once_idle(
    admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.1)
    box = _Middlebox(make_url(admin_url).port or 5432)
    try:
        with _opened(make_url(admin_url).set(port=box.port).render_as_string(False)) as database:
            first = asyncio.run(database.read(_backend))
            box.forget()
            time.sleep(0.3)  # idle past the ping's time: asked with a query, and replaced
            assert asyncio.run(database.read(_backend)) != first
            with database.write() as connection:
                second = _backend(connection)
            box.forget()
            time.sleep(0.3)
            with database.write() as connection:
                assert _backend(connection) != second
    finally:
        box.close()


def test_transactions_are_read_committed_whatever_the_servers_default(admin_url: str) -> None:
    """The code's transactions are written for READ COMMITTED: an operator's
    `default_transaction_isolation` (a managed database's parameter group) changes none."""
    url = make_url(admin_url).update_query_dict(
        {"options": "-c default_transaction_isolation=serializable"}
    )
    isolation = text("SHOW transaction_isolation")
    with _opened(url.render_as_string(False)) as database:
        with database.write() as connection:
            assert connection.execute(isolation).scalar_one() == "read committed"
        with database.read_session() as session:
            assert session.execute(isolation).scalar_one() == "read committed"
