"""Engine and sessions.

Two kinds of session: `read_session` for queries and `write_session` for changes. On SQLite
a write session opens with `BEGIN IMMEDIATE`, taking the database's single write lock
before its first read; otherwise a transaction that read, then tried to write after another
writer committed, would fail with SQLITE_BUSY instead of waiting its turn. Writers in one
process first queue on a mutex, so they wake the moment the lock is free rather than polling
for it (SQLite's busy handler sleeps up to 100 ms between tries). The request (or activity)
owns the transaction and commits once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from anyio import to_thread
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlmodel import Session

_IMMEDIATE = "countersign_immediate"
T = TypeVar("T")
WRITE_WAIT_SECONDS = 30


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's `begin` event below emit BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={WRITE_WAIT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The engine plus the two session kinds; built once per process at start-up."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.engine = make_engine(url, **engine_kwargs)
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(**{_IMMEDIATE: True})
        self._write_turn = threading.Lock() if self.dialect == "sqlite" else None

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """Commits when the block ends without an exception, rolls back otherwise."""
        turn = self._write_turn
        if turn is not None and not turn.acquire(timeout=WRITE_WAIT_SECONDS):
            raise TimeoutError("another write held the database for too long")
        try:
            with Session(self._writer, expire_on_commit=False) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        finally:
            if turn is not None:
                turn.release()

    async def read(self, query: Callable[[Connection], T]) -> T:
        """Run a short Core read for async code, on a plain connection (no ORM session).

        On SQLite (WAL) a read never waits for a lock and takes well under a millisecond, so
        it runs inline: cheaper than a hop to a thread. Elsewhere the network is involved,
        and it runs on a worker thread."""

        def run() -> T:
            with self.engine.connect() as connection:
                return query(connection)

        if self.dialect == "sqlite":
            return run()
        return await to_thread.run_sync(run)

    def dispose(self) -> None:
        self.engine.dispose()
