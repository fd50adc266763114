"""Queue benchmark: GET /api/v1/posts over HTTP against the bare SQL, on SQLite and PostgreSQL.

Loads posts (10,000, then up to 100,000), starts the real API (`countersign api`) on a free
port, and times four queries: the first page and a deep cursor, with and without filters.
Each is also run as bare SQL on the same database in the same run; the ratio is
HTTP p50 / SQL p50. Targets (issue 24): at 100,000 posts, p99 under 25 ms and HTTP within 5x
of its SQL, on both databases; the cost flat as the table grows. The requests go through a
lean client (`bench/http1.py`), so the time is the server's.

    .venv/bin/python bench/post_list.py [--posts N] [--requests N] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path: put the repository root
# there instead, so `bench` and the project's packages import as they do in the tests.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, text

from bench import http1
from bench.environment import free_port, own_secrets, scratch_database
from lifecycle.words import Role
from records import cursor, users
from records.db import Database
from records.migrations import upgrade
from records.post_models import Post

PASSWORD = "bench-password-123"  # noqa: S105 - a throwaway bench user
CHANNELS = ["x", "facebook", "instagram", "mastodon", "bluesky"]
PRIORITIES = ["low", "normal", "normal", "normal", "high", "urgent"]
STATUSES = ["new", "new", "assigned", "answered"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def load(database: Database, start: int, stop: int) -> None:
    rng = random.Random(start)
    now = datetime.now(UTC)
    batch: list[dict[str, Any]] = []
    with database.engine.begin() as conn:
        for n in range(start, stop):
            status = rng.choice(STATUSES)
            batch.append(
                {
                    "channel": rng.choice(CHANNELS),
                    "external_id": f"bench-{n}",
                    "author": f"@customer{n % 5000}",
                    "text": "My card was charged twice, can someone help? " * 3,
                    "url": f"https://social.example/{n}",
                    "priority": rng.choice(PRIORITIES),
                    "received_at": T0 + timedelta(seconds=n * 7 + rng.randint(0, 5)),
                    "respond_by": T0 + timedelta(seconds=n * 7, hours=8),
                    "status": status,
                    "assignee": f"agent{n % 40}" if status != "new" else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if len(batch) == 5000:
                conn.execute(insert(Post), batch)
                batch.clear()
        if batch:
            conn.execute(insert(Post), batch)
        if database.dialect == "postgresql":
            conn.execute(text("ANALYZE posts"))
        else:
            conn.execute(text("ANALYZE"))


def deep_cursor(
    database: Database, where: str, params: dict[str, Any], depth_fraction: float
) -> str:
    with database.engine.connect() as conn:
        total = conn.execute(text(f"SELECT count(*) FROM posts WHERE {where}"), params).scalar_one()
        offset = int(total * depth_fraction)
        row = conn.execute(
            text(
                f"SELECT received_at, id FROM posts WHERE {where} "
                "ORDER BY received_at, id LIMIT 1 OFFSET :offset"
            ),
            {**params, "offset": offset},
        ).one()
    received_at = row[0] if isinstance(row[0], datetime) else datetime.fromisoformat(row[0])
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    return cursor.encode([received_at.isoformat(), row[1]])


QUERIES: list[tuple[str, dict[str, str], str, dict[str, Any], float | None]] = [
    ("first page", {}, "1=1", {}, None),
    ("deep cursor (90%)", {}, "1=1", {}, 0.9),
    (
        "first page, status+channel",
        {"status": "assigned", "channel": "x"},
        "status = :status AND channel = :channel",
        {"status": "assigned", "channel": "x"},
        None,
    ),
    (
        "deep cursor, priority=urgent",
        {"priority": "urgent"},
        "priority = :priority",
        {"priority": "urgent"},
        0.9,
    ),
]


def sql_for(where: str, after: bool) -> str:
    keyset = " AND (received_at, id) > (:after_at, :after_id)" if after else ""
    return f"SELECT * FROM posts WHERE {where}{keyset} ORDER BY received_at, id LIMIT :limit"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def time_sql(
    database: Database, where: str, params: dict[str, Any], cur: str | None, requests: int
) -> list[float]:
    bound = dict(params, limit=51)
    if cur:
        at, post_id = cursor.decode(cur, 2)
        at_value = datetime.fromisoformat(at)
        if database.dialect == "sqlite":
            at_value = at_value.astimezone(UTC).replace(tzinfo=None)
        bound.update(after_at=at_value, after_id=post_id)
    statement = text(sql_for(where, cur is not None))
    samples = []
    with database.engine.connect() as conn:
        for _ in range(requests):
            started = time.perf_counter()
            conn.execute(statement, bound).fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def time_http(
    client: http1.BlockingConnection, params: dict[str, str], cur: str | None, requests: int
) -> list[float]:
    query = dict(params, limit="50")
    if cur:
        query["cursor"] = cur
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        status, answer = client.get("/api/v1/posts", query)
        samples.append((time.perf_counter() - started) * 1000)
        assert status == 200, answer
        assert len(json.loads(answer)["items"]) == 50
    return samples


def floors(client: http1.BlockingConnection, requests: int) -> None:
    """Where a page's time goes beyond its SQL: the same server answering a request with
    no database and no sign-in (`/healthz`), then a page of one post (sign-in, the query,
    one row) against the page of fifty."""
    for label, path, query in (
        ("floor: GET /healthz", "/healthz", {}),
        ("floor: a page of 1 post", "/api/v1/posts", {"limit": "1"}),
    ):
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            status, answer = client.get(path, query)
            samples.append((time.perf_counter() - started) * 1000)
            assert status == 200, answer
        p50, p99 = percentiles(samples[20:])  # after a warm-up
        print(f"  {label:32} {p50:8.2f}ms {p99:8.2f}ms")


def start_api(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        **own_secrets(),
        "COUNTERSIGN_DATABASE_URL": url,
        "COUNTERSIGN_API_PORT": str(port),
        "COUNTERSIGN_DATA_DIR": str(workdir),
    }
    log = (workdir / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "countersign.cli", "api"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"API did not start; see {workdir / 'api.log'}")


P99_MS = 25.0  # a page of the queue over HTTP, at most
OF_SQL = 5.0  # HTTP p50 over its SQL's, at most


def bench_database(name: str, url: str, workdir: Path, sizes: list[int], requests: int) -> None:
    upgrade(url)
    database = Database(url)
    with database.write_session() as session:
        users.create(
            session,
            username="bench",
            roles=[Role.agent, Role.supervisor],
            password=PASSWORD,
            actor="bench",
            actor_role="admin",
        )
    process, base = start_api(url, workdir)
    try:
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "bench", "password": PASSWORD}
        ).json()["access_token"]
        # A lean client (`bench/http1.py`): httpx's own milliseconds would be timed too.
        host, port = base.removeprefix("http://").rsplit(":", 1)
        client = http1.BlockingConnection(host, int(port), {"Authorization": f"Bearer {token}"})
        loaded = 0
        first_p50: dict[str, float] = {}
        for size in sizes:
            started = time.perf_counter()
            load(database, loaded, size)
            print(
                f"\n[{name}] {size:,} posts (loaded {size - loaded:,} in "
                f"{time.perf_counter() - started:.1f}s)"
            )
            loaded = size
            print(
                f"  {'query':32} {'HTTP p50':>9} {'HTTP p99':>9} {'SQL p50':>8} {'SQL p99':>8}"
                f" {'HTTP/SQL':>9} {'vs first size':>14}  targets"
            )
            for label, params, where, sql_params, depth in QUERIES:
                cur = deep_cursor(database, where, sql_params, depth) if depth else None
                time_http(client, params, cur, 20)  # warm up
                http50, http99 = percentiles(time_http(client, params, cur, requests))
                sql50, sql99 = percentiles(time_sql(database, where, sql_params, cur, requests))
                growth = http50 / first_p50.setdefault(label, http50)
                met = http99 < P99_MS and http50 / sql50 <= OF_SQL
                print(
                    f"  {label:32} {http50:8.2f}ms {http99:8.2f}ms {sql50:7.2f}ms {sql99:7.2f}ms"
                    f" {http50 / sql50:8.1f}x {growth:13.2f}x  {'met' if met else 'NOT MET'}"
                )
            floors(client, requests)
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=15)
        database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = sorted({min(10_000, args.posts), args.posts})
    with tempfile.TemporaryDirectory(prefix="countersign-bench-") as tmp:
        workdir = Path(tmp)
        for name in args.databases.split(","):
            with scratch_database(name, workdir) as url:
                bench_database(name, url, workdir, sizes, args.requests)


if __name__ == "__main__":
    main()
