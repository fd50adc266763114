"""The callers' standing (`records.sessions.Standing`: the account, its roles, whether the
token was signed out), kept between requests while no account changes.

Every signed-in request needs it, and it must follow a change at once: a role taken
away, an account disabled, a session ended. Read from the database on every request, it
was a round trip and a hop to a thread before each request's own work (on PostgreSQL
about a third of a page of one post's time, issue 24). Kept here, it is forgotten, all
of it, whenever an account changes (`records.account_changes`): this process's own
changes when they commit, another's when PostgreSQL's notification arrives. What is kept
is used only while the listener is known to hear (`Listener.listening`); otherwise every
request reads, as before.

A standing read while a change was being made is not kept: a change counts each time
everything is forgotten (`_generation`), and a read keeps its answer only if none came
between its start and its end.

On SQLite nothing is kept: it has no notifications to tell one process of another's
change, and there a read on the event loop costs less than a tenth of a millisecond.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from sqlalchemy.engine import Connection

from api.tokens import VerifiedToken
from records import sessions
from records.account_changes import Listener
from records.db import Database

KEPT_AT_MOST = 10_000  # standings kept; beyond this, all are forgotten and kept anew


class Standings:
    """The standing behind a verified token: read, or kept from an earlier request."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._kept: dict[Hashable, sessions.Standing] = {}
        self._generation = 0
        self._lock = threading.Lock()  # a forgetting between a read's check and its keeping
        self._listener: Listener | None = None
        self._unsubscribe: Callable[[], None] | None = None
        if database.dialect == "postgresql":
            self._listener = Listener(database.engine.url, self.forget)
            self._unsubscribe = database.on_account_change(self.forget)

    def start(self) -> None:
        if self._listener is not None:
            self._listener.start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.forget()

    def forget(self) -> None:
        """An account changed: nothing kept is used again."""
        with self._lock:
            self._generation += 1
            self._kept = {}

    @property
    def keeping(self) -> bool:
        return self._listener is not None and self._listener.listening

    async def of(self, verified: VerifiedToken) -> sessions.Standing | None:
        """The caller's standing as the record has it now: what the last change left, and
        nothing older."""
        key = (verified.external, verified.issuer, verified.subject, verified.token_id,
               verified.issued_at)  # fmt: skip
        if self.keeping:
            kept = self._kept.get(key)
            if kept is not None:
                return kept
        generation = self._generation
        standing = await self.database.read(lambda connection: read(connection, verified))
        with self._lock:  # kept only if no change came while it was read
            if standing is not None and self.keeping and generation == self._generation:
                if len(self._kept) >= KEPT_AT_MOST:
                    self._kept = {}
                self._kept[key] = standing
        return standing


def read(connection: Connection, verified: VerifiedToken) -> sessions.Standing | None:
    """The standing behind `verified`, read from the record."""
    token = sessions.token_key(verified.issuer, verified.token_id)
    if verified.external:
        return sessions.external(
            connection, verified.issuer, verified.subject, token, verified.issued_at
        )
    return sessions.local(connection, verified.subject, token, verified.issued_at)
