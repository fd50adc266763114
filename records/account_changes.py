"""When an account changes: a role given or taken, an account disabled, a session ended.

What a process keeps of its callers' standing (`api.standings`) must be forgotten then,
whichever process made the change. Two ways tell it:

- **This process's own changes**, at once: the functions that write an account `mark`
  their transaction, and `records.db.Database` calls its `on_account_change` callbacks when
  such a transaction commits (not before: a change rolled back changed nothing). The next
  request, the one after the response that said it was done, finds nothing kept.
- **Another process's changes** (another API, the worker, the CLI, an administrator's SQL):
  on PostgreSQL, a trigger on the account tables notifies the channel `CHANNEL` when the
  transaction commits (migration 0031), and a `Listener` here hears it, a few milliseconds
  later at most on a working connection.

A `Listener` counts as listening only while it has shown recently that its connection
works (a round trip every `HEARTBEAT_SECONDS`): a connection that died without a word
hears nothing, so what is kept is used only while a notification could have arrived.
SQLite has no notifications: there nothing is kept (`api.standings`).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

CHANNEL = "countersign_accounts"  # the triggers' channel (migration 0031)
APPLICATION_NAME = "countersign account changes"  # the listener, as pg_stat_activity shows it
MARK = "countersign_account_changed"  # on a connection's info while its transaction changed one
HEARTBEAT_SECONDS = 0.5  # the listener's round trip that shows its connection works, this often
RECONNECT_SECONDS = 0.5  # a lost listener's wait before it connects again
STARTING_SECONDS = 5.0  # the longest a process's start waits for its listener


def mark(connection: Connection) -> None:
    """This transaction changes an account: its commit tells this process's callbacks."""
    connection.info[MARK] = True


def marked(connection: Connection) -> bool:
    """Whether the transaction on `connection` changed an account; the mark is cleared
    (a connection's info outlives its transaction: it goes back to the pool with it)."""
    return bool(connection.info.pop(MARK, False))


class Listener:
    """Hears other processes' account changes on PostgreSQL, on a connection of its own,
    in a thread of its own, and calls `changed` for each (and once more whenever it starts
    listening again, for whatever it may have missed meanwhile)."""

    def __init__(self, engine: Engine, changed: Callable[[], None]) -> None:
        self._engine = engine
        self._changed = changed
        self._alive_until = 0.0  # monotonic; listening until then, if nothing else is heard
        self._wake_read, self._wake_write = os.pipe()
        self._stopping = threading.Event()
        self._first = threading.Event()  # the first attempt to listen is over, either way
        self._thread = threading.Thread(target=self._run, name="account-changes", daemon=True)

    def start(self) -> None:
        """Starts listening, and waits (`STARTING_SECONDS` at most) until it does: a process
        keeps nothing before, so it starts as it will run."""
        self._thread.start()
        self._first.wait(STARTING_SECONDS)

    def stop(self) -> None:
        """Stops listening at once (a wake-up on its own pipe ends the wait), then closes."""
        self._alive_until = 0.0
        self._stopping.set()
        os.write(self._wake_write, b"x")
        self._thread.join(timeout=10)
        if not self._thread.is_alive():  # else it is stuck on a dead connection: a daemon
            for end in (self._wake_read, self._wake_write):
                os.close(end)

    @property
    def listening(self) -> bool:
        """Whether a change by another process would be heard now."""
        return time.monotonic() < self._alive_until

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except (psycopg.Error, OSError) as exc:  # the connection went: connect again
                log.warning("stopped hearing account changes (%s); listening again", exc)
            self._alive_until = 0.0
            self._first.set()
            if not self._stopping.is_set():
                self._changed()  # what was kept may have missed a change meanwhile
                select.select([self._wake_read], [], [], RECONNECT_SECONDS)

    def _listen(self) -> None:
        pooled = self._engine.raw_connection()
        connection: Any = pooled.driver_connection
        pooled.detach()  # its own for as long as it listens: never handed to a request
        try:
            connection.autocommit = True
            connection.execute(f"SET application_name = '{APPLICATION_NAME}'")
            connection.add_notify_handler(lambda _notice: self._changed())
            connection.execute(f"LISTEN {CHANNEL}")
            self._changed()  # anything kept before this moment was kept unheard
            while not self._stopping.is_set():
                self._alive_until = time.monotonic() + 2 * HEARTBEAT_SECONDS
                self._first.set()
                ready, _, _ = select.select(
                    [connection.fileno(), self._wake_read], [], [], HEARTBEAT_SECONDS
                )
                if self._wake_read in ready:
                    return
                # A notification waiting, or the heartbeat: the round trip reads (and
                # hands to the handler) every notification that came before its answer.
                connection.execute("SELECT 1")
        finally:
            self._alive_until = 0.0
            with suppress(Exception):
                connection.close()
