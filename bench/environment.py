"""What a benchmark needs around what it measures: secrets of its own for its `countersign
api` and `worker` processes (the published development values are refused; see
`countersign.cli._refuse_development_secrets`), throwaway, made per run; a database of
its own, dropped after; and ports that stay free for a server given one."""

from __future__ import annotations

import base64
import os
import random
import secrets
import socket
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


def stable_port() -> int:
    """A port free now and likely to stay so until the server it is given to binds it:
    below the kernel's ephemeral range, which outgoing connections and the servers that
    ask for "any port" (the Temporal dev server's own services) take ports from. One taken
    with port 0, closed and handed over can be handed out again meanwhile (a lifecycle run
    ended so: the dev server's worker service was given its metrics port and crashed).
    Where none is free below the range (a tuned `ip_local_port_range` may leave none), any
    free port, as before."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    top = min(low, 32_768)
    below = range(max(1_024, top - 12_768), top)
    for port in random.SystemRandom().sample(below, min(len(below), 1_000)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()  # none free below the kernel's range


def free_port() -> int:
    """A port free now, as the kernel hands one out (for a server started at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
