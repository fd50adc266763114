"""Web page benchmark: every main page over HTTP with 10,000 drafts in the database, against
the JSON API calls behind it, on SQLite and PostgreSQL.

Loads posts and one draft each (bench/post_list.py's loader, then `records.drafts.create`,
by the agent the post is assigned to or on a post no one has yet, as the drafting rule
allows), spreads the drafts over the states, starts the real API (`countersign api`, which
serves the pages too), signs in through the sign-in form, and times each page. The baseline is
the same run's API calls that the page makes (timed one after another, as the page does);
the ratio is page p50 / API p50. Target (issue 24): every page's p99 under 150 ms.

    .venv/bin/python bench/pages.py [--drafts N] [--requests N] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # see bench/post_list.py

import argparse
import re
import tempfile
import time
from typing import Any

import httpx
from sqlalchemy import text

from bench import post_list as queue_bench
from bench.environment import scratch_database
from lifecycle.words import Role
from records import drafts, users
from records.db import Database
from records.migrations import upgrade

TARGET_MS = 150
ROLES = [Role.agent, Role.comms, Role.legal, Role.publisher, Role.supervisor, Role.auditor]
# (page, the API calls it makes) for a person holding every role but admin.
PAGES: list[tuple[str, list[str]]] = [
    ("/inbox", ["/posts?status=new&limit=50"]),
    ("/drafts", ["/drafts?author=bench&limit=50"]),
    ("/reviews", ["/reviews?limit=50"]),
    (
        "/publishing",
        [
            "/drafts?status=approved&limit=100",
            "/drafts?status=publish_failed&limit=100",
            "/drafts?status=scheduled&limit=100",
        ],
    ),
    ("/drafts/{draft}", ["/drafts/{draft}", "/posts/{post}"]),
    ("/audit", ["/audit?limit=100"]),
    ("/kpis", ["/reports/kpis"]),
]


def drafters(posts: list[tuple[int, str | None]], count: int) -> list[tuple[int, str]]:
    """`count` (post id, author) pairs from the open posts, in order, that the drafting rule
    (`lifecycle.rulebook.may_draft`) allows: an assigned post is drafted by its assignee, an
    unassigned one by anyone (drafting takes it). Every fortieth draft is the bench user's,
    on the next unassigned post, since the loader assigns none to the bench user."""
    taken: set[int] = set()
    unassigned = (p for p, assignee in posts if assignee is None and p not in taken)
    rest = ((p, assignee) for p, assignee in posts if p not in taken)
    pairs = []
    for n in range(count):
        if n % 40 == 0:
            post_id = next(unassigned, None)
            assert post_id is not None, "load more posts: the bench user's drafts need new ones"
            pairs.append((post_id, "bench"))
        else:
            post_id, assignee = next(rest)
            pairs.append((post_id, assignee or f"agent{n % 39}"))
        taken.add(post_id)
    return pairs


def load_drafts(database: Database, count: int) -> tuple[int, int]:
    """One draft per post, one in forty by the bench user, the others by the agent the post
    is assigned to (or, unassigned, by one of 39 agents), spread over the states; the id of
    one of the bench user's drafts and of its post."""
    with database.write() as connection:
        posts = [
            (int(row.id), row.assignee)
            for row in connection.execute(
                text(
                    "SELECT id, assignee FROM posts WHERE status IN ('new', 'assigned') ORDER BY id"
                )
            )
        ]
        assert len(posts) >= count, "load more posts: a draft needs a post still open"
        for n, (post_id, author) in enumerate(drafters(posts, count)):
            drafts.create(connection, post_id=post_id, author=author, body=f"Reply {n}: " * 8)
        connection.execute(
            text(
                "UPDATE drafts SET status = CASE id % 5 WHEN 0 THEN 'draft' "
                "WHEN 1 THEN 'in_review' WHEN 2 THEN 'in_review' WHEN 3 THEN 'approved' "
                "ELSE 'published' END, "
                "stage = CASE id % 5 WHEN 1 THEN 'comms' WHEN 2 THEN 'legal' END, "
                "stage_entered_at = CASE WHEN id % 5 IN (1, 2) THEN created_at END"
            )
        )
        connection.execute(text("ANALYZE" if database.dialect == "sqlite" else "ANALYZE drafts"))
        mine = connection.execute(
            text("SELECT id, post_id FROM drafts WHERE author = 'bench' ORDER BY id LIMIT 1")
        ).one()
    return int(mine.id), int(mine.post_id)


def sign_in(base: str) -> httpx.Client:
    browser = httpx.Client(base_url=base, follow_redirects=True)
    form = browser.get("/login").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', form)
    assert token, "no CSRF token on the sign-in form"
    answer = browser.post(
        "/login",
        data={"username": "bench", "password": queue_bench.PASSWORD, "csrf_token": token[1]},
    )
    assert answer.status_code == 200, answer.text
    return browser


def timed(call: Any, requests: int) -> list[float]:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def bench_database(name: str, url: str, workdir: Path, count: int, requests: int) -> bool:
    upgrade(url)
    database = Database(url)
    with database.write_session() as session:
        users.create(
            session,
            username="bench",
            roles=ROLES,
            password=queue_bench.PASSWORD,
            actor="bench",
            actor_role="admin",
        )
    started = time.perf_counter()
    queue_bench.load(database, 0, count * 2)  # a quarter answered: drafts need open ones
    draft, post = load_drafts(database, count)
    took = time.perf_counter() - started
    print(f"\n[{name}] {count * 2:,} posts, {count:,} drafts (loaded in {took:.1f}s)")
    process, base = queue_bench.start_api(url, workdir)
    met = True
    try:
        browser = sign_in(base)
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "bench", "password": queue_bench.PASSWORD},
        ).json()["access_token"]
        api = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"})
        print(
            f"  {'page':16} {'page p50':>9} {'page p99':>9} {'API p50':>8} {'page/API':>9}"
            f"  p99 < {TARGET_MS} ms"
        )
        for page, calls in PAGES:
            path = page.format(draft=draft)
            paths = [c.format(draft=draft, post=post) for c in calls]

            def load_page(path: str = path) -> None:
                answer = browser.get(path)
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])

            def call_api(paths: list[str] = paths) -> None:
                for each in paths:
                    answer = api.get(each)
                    assert answer.status_code == 200, (each, answer.text[:300])

            timed(load_page, 5)  # warm up
            timed(call_api, 5)
            page50, page99 = queue_bench.percentiles(timed(load_page, requests))
            api50, _ = queue_bench.percentiles(timed(call_api, requests))
            ok = page99 < TARGET_MS
            met &= ok
            print(
                f"  {page:16} {page50:8.1f}ms {page99:8.1f}ms {api50:7.1f}ms {page50 / api50:8.2f}x"
                f"  {'yes' if ok else 'NO'}"
            )
        browser.close()
        api.close()
    finally:
        process.terminate()
        process.wait(timeout=15)
        database.dispose()
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    met = True
    with tempfile.TemporaryDirectory(prefix="countersign-pages-") as tmp:
        workdir = Path(tmp)
        for name in args.databases.split(","):
            with scratch_database(name, workdir) as url:
                met &= bench_database(name, url, workdir, args.drafts, args.requests)
    print("\nevery page under the target" if met else "\nSOME PAGES MISS THE TARGET")


if __name__ == "__main__":
    main()
