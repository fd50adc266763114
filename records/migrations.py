"""Running the Alembic migrations from code (the CLI, `countersign dev`, the tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from records.db import make_engine

ROOT = Path(__file__).resolve().parent.parent


def alembic_config() -> Config:
    ini = ROOT / "alembic.ini"
    if not ini.exists():
        raise RuntimeError(f"alembic.ini not found at {ini}; run from a source checkout")
    config = Config(str(ini))
    config.attributes["configure_logger"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    _run(url, command.upgrade, revision)


def downgrade(url: str, revision: str) -> None:
    """Back to `revision` (tests of a migration's work on data it finds)."""
    _run(url, command.downgrade, revision)


def _run(url: str, step: Callable[[Config, str], None], revision: str) -> None:
    """Run an Alembic command on `url` in one transaction."""
    with migrating(url) as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        step(config, revision)


@contextmanager
def migrating(url: str) -> Iterator[Connection]:
    """A connection to `url` in the transaction a migration runs in (`alembic upgrade`
    from the command line takes it too, through alembic/env.py).

    On SQLite, a change of a column's type or nullability rebuilds its table (Alembic's
    batch mode: copy, drop, rename); with foreign keys enforced, dropping a table that
    other rows point at fails, or deletes them where the key cascades. So they are off for
    the migration (SQLite reads the pragma only outside a transaction) and every reference
    is checked before it commits; the engine is the migration's own, and disposed after."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            with connection.begin():
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the migration left broken references: {broken[:5]}")
    finally:
        engine.dispose()
