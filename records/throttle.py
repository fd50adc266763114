"""Failed sign-ins, counted where every API process sees them.

The counting is the `limits` library's (fixed windows, several at once, so the wait grows:
see `api.signin`); this module is its storage, the `sign_in_counters` table, so a flood
spread over several API processes is counted once. Each increment is one atomic upsert
(`INSERT … ON CONFLICT DO UPDATE … RETURNING`, on SQLite and PostgreSQL alike): two
processes counting the same key at the same moment both count.
"""

from __future__ import annotations

import time
from typing import Any

from limits.storage import Storage
from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from records.access_tables import SignInCounter
from records.db import Database

COUNTERS = SignInCounter.__table__  # type: ignore[attr-defined]


class DatabaseStorage(Storage):
    """A `limits` storage over the `sign_in_counters` table (fixed windows only)."""

    STORAGE_SCHEME = None  # built directly, never from a URI

    def __init__(self, database: Database) -> None:
        super().__init__(wrap_exceptions=False)
        self.database = database
        dialect = postgresql if database.dialect == "postgresql" else sqlite
        self._insert: Any = dialect.insert

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        [count] = self.incr_many([(key, expiry)], amount)
        return count

    def incr_many(self, windows: list[tuple[str, float]], amount: int = 1) -> list[int]:
        """Count `amount` in each (key, expiry) window, all in one transaction (which also
        drops the windows that have ended, so a flood of new keys does not pile up); the
        counts."""
        now = time.time()
        counts = []
        with self.database.write() as connection:
            connection.execute(delete(COUNTERS).where(COUNTERS.c.expires_at <= now))
            for key, expiry in windows:
                counts.append(
                    int(connection.execute(self._upsert(key, expiry, amount, now)).scalar_one())
                )
        return counts

    def _upsert(self, key: str, expiry: float, amount: int, now: float) -> Any:
        inserted = self._insert(COUNTERS).values(key=key, count=amount, expires_at=now + expiry)
        expired = COUNTERS.c.expires_at <= now
        return inserted.on_conflict_do_update(
            index_elements=[COUNTERS.c.key],
            set_={
                "count": case((expired, amount), else_=COUNTERS.c.count + amount),
                "expires_at": case((expired, now + expiry), else_=COUNTERS.c.expires_at),
            },
        ).returning(COUNTERS.c.count)

    def refund_many(self, keys: list[str]) -> None:
        """Give one back in each window still open (never below nothing)."""
        with self.database.write() as connection:
            connection.execute(
                update(COUNTERS)
                .where(
                    COUNTERS.c.key.in_(keys),
                    COUNTERS.c.expires_at > time.time(),
                    COUNTERS.c.count > 0,
                )
                .values(count=COUNTERS.c.count - 1)
            )

    def clear_many(self, keys: list[str]) -> None:
        with self.database.write() as connection:
            connection.execute(delete(COUNTERS).where(COUNTERS.c.key.in_(keys)))

    def get(self, key: str) -> int:
        row = self._row(key)
        return int(row.count) if row is not None and row.expires_at > time.time() else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        now = time.time()
        return float(row.expires_at) if row is not None and row.expires_at > now else now

    def clear(self, key: str) -> None:
        with self.database.write() as connection:
            connection.execute(delete(COUNTERS).where(COUNTERS.c.key == key))

    def check(self) -> bool:
        try:
            with self.database.engine.connect() as connection:
                connection.execute(select(COUNTERS.c.key).limit(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.database.write() as connection:
            gone = connection.execute(delete(COUNTERS))
        return int(gone.rowcount or 0)

    def _row(self, key: str) -> Any:
        with self.database.engine.connect() as connection:
            return connection.execute(
                select(COUNTERS.c.count, COUNTERS.c.expires_at).where(COUNTERS.c.key == key)
            ).first()
