"""What a benchmark needs around what it measures: secrets of its own for its `countersign
api` and `worker` processes (the published development values are refused; see
`countersign.cli._refuse_development_secrets`), throwaway, made per run; and a database of
its own, dropped after."""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

PG_ADMIN = os.environ.get(
    "COUNTERSIGN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASES = ("sqlite", "postgresql")


def own_secrets() -> dict[str, str]:
    return {
        "COUNTERSIGN_JWT_SECRET": secrets.token_urlsafe(32),
        "COUNTERSIGN_CSRF_SECRET": secrets.token_urlsafe(32),
        "COUNTERSIGN_ACTION_KEY": secrets.token_urlsafe(32),
        "COUNTERSIGN_AUDIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "COUNTERSIGN_SECRETS_KEY": base64.b64encode(os.urandom(32)).decode(),
    }


@contextmanager
def scratch_database(kind: str, workdir: Path) -> Iterator[str]:
    """The URL of an empty database of `kind` (sqlite: a new file in `workdir`;
    postgresql: a new database on the server `COUNTERSIGN_TEST_PG_URL` names, dropped on
    leaving, whoever is still connected)."""
    name = f"countersign_bench_{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.db'}"
        return
    if kind != "postgresql":
        raise SystemExit(f"unknown database {kind!r} (one of: {', '.join(DATABASES)})")
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def resident_bytes(pid: int | str = "self") -> int | None:
    """A process's resident memory (this one's by default), from /proc; None once gone."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None
