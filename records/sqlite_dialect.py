"""SQLite as Countersign opens it (`records.db`): WAL, foreign keys, a busy timeout, and
every transaction begun by SQLAlchemy itself, `BEGIN` for a reader's and `BEGIN IMMEDIATE`
for a writer's (which takes the database's one write lock before its first read)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

WRITE_WAIT_SECONDS = 30  # the longest a writer waits for its turn, in the process and the file


class SQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, with every transaction begun by SQLAlchemy itself (pysqlite's own BEGIN is
    deferred to the first write, and none is sent before a read).

    This is the dialect-level form of SQLAlchemy's documented `connect`/`begin` event recipe:
    a `begin` listener makes every statement on the engine dispatch connection events, which
    cost more than a short query itself."""

    begin_statement = "BEGIN"
    supports_statement_cache = True

    def on_connect(self) -> Callable[[Any], None]:
        inherited = super().on_connect()

        def configure(dbapi_connection: Any) -> None:
            if inherited is not None:
                inherited(dbapi_connection)
            dbapi_connection.isolation_level = None  # no implicit BEGIN; see do_begin
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                f"busy_timeout={WRITE_WAIT_SECONDS * 1000}",
            ):
                dbapi_connection.execute(f"PRAGMA {pragma}")

        return configure

    def do_begin(self, dbapi_connection: Any) -> None:
        dbapi_connection.execute(self.begin_statement)


class ImmediateSQLiteDialect(SQLiteDialect):
    begin_statement = "BEGIN IMMEDIATE"
    supports_statement_cache = True


# The drivers' names: an engine's URL says `sqlite+countersign` (`records.db.make_engine`).
DEFERRED, IMMEDIATE = "countersign", "countersign_immediate"
registry.register(f"sqlite.{DEFERRED}", __name__, "SQLiteDialect")
registry.register(f"sqlite.{IMMEDIATE}", __name__, "ImmediateSQLiteDialect")
