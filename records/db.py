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

import os
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar, cast

import psycopg
from anyio import to_thread
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlmodel import Session

from records import account_changes, sqlite_dialect
from records.errors import Unavailable

T = TypeVar("T")
WRITE_WAIT_SECONDS = sqlite_dialect.WRITE_WAIT_SECONDS
# How long a read may run on the event loop before it is stopped and run on a thread
# instead (`Database.read`, SQLite): `INLINE_STEPS` of SQLite's virtual machine's
# instructions, about a millisecond here (a page of the queue an index answers takes
# 2,000 at 50 posts, 8,000 at 200; a scan of 100,000 posts 400,000), or `INLINE_SECONDS`
# of the clock, which counts the read's Python between its statements too, whichever
# comes first. Both are looked at every `_STEPS_A_TICK` instructions, by SQLite's progress
# handler.
INLINE_STEPS = 20_000
INLINE_SECONDS = 0.005
_STEPS_A_TICK = 100
# Set on a connection's info while a read runs on the event loop: what the tracing tells
# an interruption of ours by (`countersign.tracing`).
INLINE = "countersign_inline"


def _private_file(path: Path) -> None:
    """The SQLite file readable by its owner only (SQLite gives its journal and WAL files
    the database file's mode), in a folder made for it owner-only too; a file an earlier
    version left readable by others is closed now."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        # Only a file that is not there yet is opened here: closing a descriptor of a file
        # drops every POSIX lock this process holds on it, and with them the locks of its
        # open SQLite connections, which lets another process's writes corrupt the file
        # (sqlite.org/howtocorrupt.html, 2.2). A second Database on a file in use is safe.
        with suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    for piece in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if piece.exists() and piece.stat().st_mode & 0o077:
            piece.chmod(0o600)


def make_engine(url: str, *, immediate: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url`. On SQLite its transactions begin `BEGIN IMMEDIATE` when
    `immediate` (the writer's engine), else `BEGIN`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
            # A checkout never waits for a connection another read holds: a read on the
            # event loop (`Database.read`) would hold up every request while it waited. The
            # reads a process runs at once are bounded by its threads; each connection is a
            # file handle.
            kwargs.setdefault("max_overflow", -1)
        driver = sqlite_dialect.IMMEDIATE if immediate else sqlite_dialect.DEFERRED
        sqlite = create_engine(
            parsed.set(drivername=f"sqlite+{driver}"),
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )
        event.listen(sqlite, "checkin", account_changes.unmark)
        return sqlite
    # The transactions here are written for READ COMMITTED (a compare-and-set on a row, a
    # read's statements each with a snapshot of its own, `Database.read`): a server whose
    # default an operator set otherwise does not change them.
    engine = create_engine(
        url, pool_size=10, max_overflow=20, isolation_level="READ COMMITTED", **kwargs
    )
    event.listen(engine, "connect", _arrays_in_binary)
    event.listen(engine, "checkout", _still_open)
    event.listen(engine, "checkin", _idle_from)
    event.listen(engine, "checkin", account_changes.unmark)
    return engine


# A connection idle this long is asked with a query whether it is still there, as SQLAlchemy's
# `pool_pre_ping` asks on every checkout: one a middlebox forgot (a NAT, a load balancer
# after its idle timeout) or a failover left behind was dropped without a word, and only a
# packet sent finds it. A connection back in the pool for less (a busy pool's, taken again
# within milliseconds) is asked its socket only: see `_still_open`.
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_FROM = "countersign_idle_from"


def _idle_from(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_FROM] = time.monotonic()


def _still_open(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A pooled connection that is no longer there is replaced before a statement is sent
    on it. A server that ended the session (a restart, a failover, an administrator) says
    so and closes the socket, which makes it readable: a connection used a moment ago is
    asked its socket only, which costs no round trip where a ping query costs one on every
    checkout. One with something to read (a goodbye, or a notice of no matter, or TLS's own
    traffic) or idle for `PING_AFTER_IDLE_SECONDS` is pinged. A new one (the info of a
    connection SQLAlchemy made again is new too) is not: it was just made."""
    idle_from = record.info.get(_IDLE_FROM)
    if idle_from is None:
        return
    try:
        if time.monotonic() - idle_from < PING_AFTER_IDLE_SECONDS:
            poller = select.poll()
            poller.register(dbapi_connection.fileno(), select.POLLIN)
            if not poller.poll(0):
                return
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()  # handed out idle, as it came back
    except (psycopg.Error, OSError) as exc:
        raise DisconnectionError("the connection to the database is gone") from exc


def _arrays_in_binary(dbapi_connection: Any, _record: Any) -> None:
    """psycopg sends a list in its text form unless told otherwise, quoting every element
    with a regular expression in Python: a batch's arrays (`records.bulk`) cost ten times
    more that way than in the binary form, which needs no quoting. (Lists only ever carry
    one type here, which is all the binary form asks.)"""
    dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)


class _Held:
    """A connection one thread holds for its reads on its event loop
    (`Database._loop_held`): closed when the thread ends (its locals are dropped, and
    this with them) or when the database is disposed, whichever comes first. `in_use` is
    held for each read on it, and by `dispose` to close it: never under a running read."""

    __slots__ = ("__weakref__", "connection", "in_use", "release")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.in_use = threading.Lock()
        self.release = weakref.finalize(self, _close_quietly, connection)
        self.release.atexit = False  # at exit the process lets go of its files anyway

    @property
    def usable(self) -> bool:
        """Neither closed (at `Database.dispose`) nor invalidated (a read that failed)."""
        return not (self.connection.closed or self.connection.invalidated)


def _close_quietly(connection: Connection) -> None:
    with suppress(Exception):  # from whichever thread let go of it last; nothing to tell
        connection.close()


class Database:
    """The engine plus the two session kinds; built once per process at start-up."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.engine = make_engine(url, **engine_kwargs)
        self.dialect = self.engine.dialect.name
        # On SQLite writes have their own engine, whose transactions take the write lock first.
        self._writer = (
            make_engine(url, immediate=True, **engine_kwargs)
            if self.dialect == "sqlite"
            else self.engine
        )
        self._write_turn = threading.Lock() if self.dialect == "sqlite" else None
        # PostgreSQL answers each statement of a READ COMMITTED transaction from a snapshot
        # of its own: a read's transaction adds nothing but its BEGIN and ROLLBACK, two round
        # trips. `read` runs without one (SQLite's reads keep theirs: one snapshot for all).
        self._reader = (
            self.engine
            if self.dialect == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # SQLite's reads on an event loop each run on a connection their thread holds
        # (`_inline`): a checkout from the pool and its return cost as much as a short
        # read's statement (40 of 90 us). One per thread, as the loops of a process each
        # have their own; each is closed when its thread ends, or at `dispose`.
        self._loop_connections = threading.local()
        self._held: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._held_lock = threading.Lock()  # a thread adding while `dispose` lists them
        self._account_callbacks: list[Callable[[], None]] = []

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine the database is reached through (the reader's and, on SQLite, the
        writer's): what an instrumentation must watch."""
        return (self.engine,) if self._writer is self.engine else (self.engine, self._writer)

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """Commits when the block ends without an exception, rolls back otherwise."""
        with self._turn(), Session(self._writer, expire_on_commit=False) as session:
            try:
                yield session
                changed = session.in_transaction() and account_changes.marked(session.connection())
                session.commit()
            except BaseException:
                session.rollback()
                raise
        if changed:
            self._accounts_changed()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """`write_session` for Core statements only (no ORM unit of work, about half the
        cost): the activities, which write on every action."""
        with self._turn(), self._writer.begin() as connection:
            yield connection
            changed = account_changes.marked(connection)
        if changed:  # committed
            self._accounts_changed()

    def on_account_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """`callback` is called when a transaction of this process that changed an account
        commits (`records.account_changes`), until the function returned is called."""
        self._account_callbacks.append(callback)
        return lambda: self._account_callbacks.remove(callback)

    def _accounts_changed(self) -> None:
        for callback in self._account_callbacks:
            callback()

    @contextmanager
    def _turn(self) -> Iterator[None]:
        turn = self._write_turn
        if turn is not None and not turn.acquire(timeout=WRITE_WAIT_SECONDS):
            raise TimeoutError("another write held the database for too long")
        try:
            yield
        finally:
            if turn is not None:
                turn.release()

    async def read(self, query: Callable[[Connection], T], *, short: bool = True) -> T:
        """Run a Core read for async code, on a plain connection (no ORM session).

        On SQLite (WAL) a read never waits for a lock, and most reads here (an index probe,
        a page an index hands over in order) take well under a millisecond: they run
        inline, which is cheaper than a hop to a thread (about 0.1 ms here, and most of a
        page's time beyond its SQL, issue 24). One that turns out longer (a filter without
        an index of its own, a sort of its matches) is stopped after `INLINE_STEPS` or
        `INLINE_SECONDS`, so it holds up the event loop, and every other request, about
        that long at most, and runs again on a thread; what it read, or made of its
        interruption, is not its answer. A read known to scan (`short=False`: figures
        over every post) goes to a thread at once. Elsewhere the network is involved:
        every read runs on a thread."""

        def run() -> T:
            with self._reader.connect() as connection:
                return query(connection)

        if short and self.dialect == "sqlite":
            finished, value = self._inline(query)
            if finished:
                return cast(T, value)
        return await to_thread.run_sync(run)

    def _inline(self, query: Callable[[Connection], T]) -> tuple[bool, T | None]:
        """(True, its answer) if `query` finished within its budget, else (False, None)."""
        while True:
            held = self._loop_held()
            with held.in_use:
                if held.usable:
                    return self._budgeted(held.connection, query)
            # disposed since it was handed out: the next turn makes a new one

    @staticmethod
    def _budgeted(
        connection: Connection, query: Callable[[Connection], T]
    ) -> tuple[bool, T | None]:
        steps, deadline = 0, time.perf_counter() + INLINE_SECONDS
        stopped = False

        def tick() -> bool:  # True: SQLite stops the statement ("interrupted")
            nonlocal steps, stopped
            steps += _STEPS_A_TICK
            stopped = stopped or steps > INLINE_STEPS or time.perf_counter() > deadline
            return stopped

        sqlite = cast(sqlite3.Connection, connection.connection.driver_connection)
        connection.info[INLINE] = True
        sqlite.set_progress_handler(tick, _STEPS_A_TICK)
        try:
            value = query(connection)
        except Exception:
            if stopped:
                return False, None
            raise
        finally:
            sqlite.set_progress_handler(None, 0)
            connection.info.pop(INLINE, None)
            # Its transaction ends here, and with it its snapshot: the next read sees
            # every write committed before it, and the WAL is not held back meanwhile.
            try:
                connection.rollback()
            except DATABASE_ERRORS:
                connection.invalidate()  # the next read makes a new one
        return (False, None) if stopped else (True, value)

    def _loop_held(self) -> _Held:
        """The connection this thread's reads on its event loop run on (`_inline`), made
        again when it was closed (at `dispose`) or invalidated (a read that failed on it)."""
        held: _Held | None = getattr(self._loop_connections, "held", None)
        if held is not None:
            if held.usable:
                return held
            held.release()
        held = _Held(self._reader.connect())
        self._loop_connections.held = held
        with self._held_lock:
            self._held.add(held)
        return held

    def dispose(self) -> None:
        with self._held_lock:
            everyone = list(self._held)
        for held in everyone:
            with held.in_use:  # after the read running on it, if any
                held.release()
        self.engine.dispose()
        self._writer.dispose()


# SQLSTATEs that say the database is out of reach for now, not that the statement is wrong:
# the connection failed or was cut (class 08), the server shut down or is starting
# (57P01-57P03), too many connections (53300), a standby after a failover that no longer
# takes writes (25006).
_AWAY = ("08", "57P01", "57P02", "57P03", "53300", "25006")


# What a database call raises when it fails: the driver's errors, and no connection free in
# the pool in time.
DATABASE_ERRORS = (DBAPIError, SATimeoutError)


def out_of_reach(exc: BaseException) -> bool:
    """Whether a database error means "come back shortly" (a restart, a failover, a full
    pool, SQLite's write lock held past the wait) rather than a fault of ours: a missing
    table, a syntax error, a broken constraint, a cancelled statement are faults, and
    stay 500s with their stack traces."""
    if isinstance(exc, SATimeoutError):  # no connection free in the pool in time
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    original = exc.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate).startswith(_AWAY)
    if isinstance(original, psycopg.OperationalError):
        return True  # no SQLSTATE: the connection was never made ("connection refused")
    return isinstance(original, sqlite3.OperationalError) and "locked" in str(original)


def unavailable(exc: BaseException) -> Unavailable | None:
    """A database error as the caller is to hear it: `Unavailable` (503, Retry-After) when
    the database is out of reach, else None (a fault of ours)."""
    if not out_of_reach(exc):
        return None
    return Unavailable("the database is unavailable; try again shortly")
