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

import psycopg
from sqlalchemy import URL
from sqlalchemy.engine import Connection
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

CHANNEL = "countersign_accounts"  # the triggers' channel (migration 0031)
TABLES = ("users", "user_roles", "revoked_tokens")  # each with its trigger, `<table>_changed`
APPLICATION_NAME = "countersign account changes"  # the listener, as pg_stat_activity shows it
MARK = "countersign_account_changed"  # on a connection's info while its transaction changed one
HEARTBEAT_SECONDS = 0.5  # the listener's round trip that shows its connection works, this often
RECONNECT_SECONDS = 0.5  # a lost listener's wait before it connects again
STARTING_SECONDS = 5.0  # the longest a process's start waits for its listener


def mark(connection: Connection) -> None:
    """This transaction changes an account: its commit tells this process's callbacks."""
    connection.info[MARK] = True


def marked(connection: Connection) -> bool:
    """Whether the transaction on `connection` changed an account."""
    return bool(connection.info.get(MARK, False))


def unmark(_dbapi_connection: object, record: ConnectionPoolEntry) -> None:
    """A connection back in its pool carries no mark (its info outlives the transaction
    that left one): an engine's `checkin` listener (`records.db`)."""
    record.info.pop(MARK, None)


class Listener:
    """Hears other processes' account changes on PostgreSQL, on a connection of its own,
    in a thread of its own, and calls `changed` for each (and once more whenever it starts
    listening again, for whatever it may have missed meanwhile).

    Its heartbeat asks the server whether a change would be heard: this connection listens
    on `CHANNEL` (a pooler in transaction mode would have dropped it) and the triggers of
    migration 0031 are there and enabled. Any other answer, an error or no answer within
    `2 * HEARTBEAT_SECONDS`, and it is not `listening`."""

    def __init__(self, url: URL, changed: Callable[[], None]) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._changed = changed
        self._alive_until = 0.0  # monotonic; listening until then, if nothing else is heard
        self._wake_read, self._wake_write = os.pipe()
        self._stopping = threading.Event()
        self._first = threading.Event()  # the first attempt to listen is over, either way
        self._thread = threading.Thread(target=self._run, name="account-changes", daemon=True)
        self._heard_last = True  # what the log said last: a change of it is logged once

    def start(self) -> None:
        """Starts listening, and waits (`STARTING_SECONDS` at most) until it does: a process
        keeps nothing before, so it starts as it will run."""
        self._thread.start()
        self._first.wait(STARTING_SECONDS)

    def stop(self) -> None:
        """Stops listening at once (a wake-up on its own pipe ends the wait), then closes.
        Once: a second call does nothing."""
        if self._stopping.is_set():
            return
        self._alive_until = 0.0
        self._stopping.set()
        os.write(self._wake_write, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if not self._thread.is_alive():  # else it waits on a dead connection: a daemon
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
            except Exception as exc:  # whatever it was, listening again is the way on
                self._tell(heard=False, why=str(exc))
            self._alive_until = 0.0
            self._first.set()
            if not self._stopping.is_set():
                self._changed()  # what was kept may have missed a change meanwhile
                select.select([self._wake_read], [], [], RECONNECT_SECONDS)

    def _listen(self) -> None:
        with psycopg.connect(
            self._conninfo,
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=5,
            # A connection that died without a word fails its heartbeat within seconds,
            # not after TCP's quarter of an hour of retransmissions.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
            tcp_user_timeout=5000,
        ) as connection:
            connection.add_notify_handler(lambda _notice: self._changed())
            connection.execute(f"LISTEN {CHANNEL}")
            self._changed()  # anything kept before this moment was kept unheard
            while not self._stopping.is_set():
                # The round trip also reads (and hands to the handler) every notification
                # that came before its answer.
                if not connection.execute(_HEARD, _HEARD_PARAMETERS).fetchone()[0]:  # type: ignore[index]
                    raise LookupError(
                        f"not listening on {CHANNEL}, or an account table's trigger is "
                        "missing or disabled (migration 0031)"
                    )
                self._alive_until = time.monotonic() + 2 * HEARTBEAT_SECONDS
                self._first.set()
                self._tell(heard=True)
                ready, _, _ = select.select(
                    [connection.fileno(), self._wake_read], [], [], HEARTBEAT_SECONDS
                )
                if self._wake_read in ready:
                    return

    def _tell(self, *, heard: bool, why: str = "") -> None:
        if heard != self._heard_last:
            if heard:
                log.info("hearing account changes again")
            else:
                log.warning("not hearing account changes (%s): every request reads", why)
            self._heard_last = heard


# Whether this connection would hear a change: it listens, and every trigger is enabled
# ('O': unless a session replicates; 'A': always).
_HEARD = (
    "SELECT %(channel)s IN (SELECT pg_listening_channels()) AND ("
    " SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
    " WHERE pg_table_is_visible(c.oid) AND t.tgenabled IN ('O', 'A')"
    " AND c.relname = ANY(%(tables)s) AND t.tgname = c.relname || '_changed'"
    ") = %(count)s"
)
_HEARD_PARAMETERS = {"channel": CHANNEL, "tables": list(TABLES), "count": len(TABLES)}
