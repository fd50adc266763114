"""The queues' router (issue 23, item 9): 10,000 waiting posts and 500 agents.

    .venv/bin/python bench/routing.py [--posts 10000] [--agents 500] [--runs 3]
                                      [--databases sqlite,postgresql]

1. The decision (`lifecycle.routing.assign`): one round over every waiting post and agent,
   in decisions per second, against a baseline measured in the same run: the bare pairing
   of the same posts with agents in turn (no skills, capacity or order), the floor of any
   decision.
2. The round in the database (`records.routing.route`): the same queue and agents stored,
   a round written (each assignment with its audit event and the agent's notification),
   in decisions per second.
3. The wait the router adds: with the queue full of waiting posts, one new urgent post and
   one agent with room, the time from a nudge's round starting to the post being the
   agent's (`route` until it returns), p50 and p99 over `--samples`. Target: p99 < 50 ms.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # see bench/post_list.py

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from bench.environment import own_secrets, scratch_database
from countersign import heap
from lifecycle.routing import URGENCY, Agent, Waiting, assign
from lifecycle.words import Presence, Role
from records import bulk, routing
from records.db import Database
from records.migrations import upgrade
from records.tables import AGENTS, POSTS, QUEUES, USER_ROLES, USERS

T0 = datetime(2026, 11, 30, tzinfo=UTC)
LANGUAGES = ("en", "es", "de", "fr", "pt")
TOPICS = ("fraud", "billing", "outage", "delivery", "praise")
CHANNELS = ("x", "bluesky", "mastodon", "facebook")


def world(posts: int, agents: int, seed: int) -> tuple[list[Waiting], list[Agent]]:
    rng = random.Random(seed)
    waiting = [
        Waiting(
            post_id=n + 1, channel=rng.choice(CHANNELS), priority=rng.choice(list(URGENCY)),
            received_at=T0 + timedelta(seconds=n), language=rng.choice(LANGUAGES),
            topic=rng.choice((*TOPICS, None)),
        )
        for n in range(posts)
    ]  # fmt: skip
    staff = [
        Agent(
            username=f"agent{n:04d}",
            presence=Presence.available if rng.random() < 0.8 else Presence.away,
            capacity=3, load=rng.randrange(3),
            idle_since=T0 - timedelta(seconds=rng.randrange(3600)),
            languages=frozenset(rng.sample(LANGUAGES, rng.randrange(1, 3))),
            topics=frozenset(rng.sample(TOPICS, rng.randrange(0, 3))),
        )
        for n in range(agents)
    ]  # fmt: skip
    return waiting, staff


def decide(posts: int, agents: int, seed: int) -> tuple[float, float, int]:
    """(decisions/s, bare pairings/s, decisions) for one round."""
    waiting, staff = world(posts, agents, seed)
    started = time.perf_counter()
    decided = assign(waiting, staff, now=T0)
    took = time.perf_counter() - started
    room = sum(a.capacity - a.load for a in staff if a.presence is Presence.available)
    started = time.perf_counter()
    bare = [(post.post_id, staff[n % len(staff)].username) for n, post in enumerate(waiting[:room])]
    bare_took = time.perf_counter() - started
    return len(decided) / took, len(bare) / max(bare_took, 1e-9), len(decided)


def stored_world(database: Database, posts: int, agents: int, seed: int) -> int:
    """The queue, its posts and agents in the database; the queue's id."""
    waiting, staff = world(posts, agents, seed)
    now = datetime.now(UTC)
    with database.write() as connection:
        queue_id = int(connection.execute(QUEUES.insert().values(
            name="bench", position=1, strategy="longest_idle", channels=[], languages=[],
            topics=[], priorities=[], origins=[], created_at=now, updated_at=now,
        ).returning(QUEUES.c.id)).scalar_one())  # fmt: skip
        users = bulk.insert_ids(connection, USERS, [
            {"username": a.username, "display_name": a.username, "password_hash": "x",
             "disabled": False, "created_at": now, "updated_at": now} for a in staff
        ])  # fmt: skip
        bulk.insert(
            connection, USER_ROLES, [{"user_id": u, "role": Role.agent.value} for u in users]
        )
        bulk.insert(connection, AGENTS, [
            {"username": a.username, "team_id": None, "languages": sorted(a.languages),
             "topics": sorted(a.topics), "channels": [], "capacity": a.capacity,
             "presence": a.presence.value, "presence_since": now, "idle_since": a.idle_since,
             "updated_at": now} for a in staff
        ])  # fmt: skip
        bulk.insert(connection, POSTS, [_post(p, queue_id, now) for p in waiting])
    return queue_id


def _post(post: Waiting, queue_id: int, now: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "channel": post.channel, "external_id": f"b{post.post_id}", "author": "@b",
        "text": "a question", "url": "https://x.example/b", "received_at": post.received_at,
        "respond_by": post.received_at + timedelta(hours=1),
        "priority": post.priority, "status": "new", "origin": "mention",
        "language": post.language, "topic": post.topic, "queue_id": queue_id,
        "replies_allowed": 1, "erased": False, "public_risk": False,
        "created_at": now, "updated_at": now, **extra,
    }  # fmt: skip


def in_database(
    kind: str, posts: int, agents: int, seed: int, samples: int, workdir: Path
) -> tuple[float, list[float]]:
    """(decisions/s of a full round written, the wait added for a new post, in ms)."""
    with scratch_database(kind, workdir) as url:
        upgrade(url)
        database = Database(url)
        queue_id = stored_world(database, posts, agents, seed)
        started = time.perf_counter()
        with database.write() as connection:
            decided = routing.route(connection, queue_id)
        rate = len(decided) / (time.perf_counter() - started)
        # Every agent is full now; each sample frees one and a new urgent post arrives.
        waits = []
        now = datetime.now(UTC)
        for n in range(samples):
            post_id, _ = decided[n % len(decided)]
            with database.write() as connection:
                connection.execute(update(POSTS).where(POSTS.c.id == post_id)
                                   .values(status="answered"))  # fmt: skip
                fresh_post = Waiting(post_id=posts + n + 1, channel="x", priority="urgent",
                                     received_at=now, language=None, topic=None)  # fmt: skip
                bulk.insert(connection, POSTS, [_post(fresh_post, queue_id, now)])
            started = time.perf_counter()
            with database.write() as connection:
                got = routing.route(connection, queue_id)
            waits.append((time.perf_counter() - started) * 1000)
            assert got, "the freed agent got nothing"
        database.engine.dispose()
        return rate, waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    os.environ.update(own_secrets())
    heap.settle()  # as the worker does once started (countersign.heap)
    runs = [decide(args.posts, args.agents, seed) for seed in range(args.runs)]
    rate, bare = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(
        f"decision: {args.posts:,} waiting posts, {args.agents} agents, {runs[0][2]:,} assigned"
        f" a round; median of {args.runs}: {rate:,.0f} decisions/s"
        f" ({', '.join(f'{r[0]:,.0f}' for r in runs)}); bare pairing {bare:,.0f}/s;"
        f" ratio {rate / bare:.3f}; a round {runs[0][2] / rate * 1000:,.0f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases.split(","):
            results = [
                in_database(kind, args.posts, args.agents, seed, args.samples, Path(tmp))
                for seed in range(args.runs)
            ]
            rates = [r[0] for r in results]
            p99s = [statistics.quantiles(r[1], n=100)[98] for r in results]
            p50s = [statistics.median(r[1]) for r in results]
            verdict = "ok" if statistics.median(p99s) < 50 else "ABOVE TARGET"
            print(
                f"{kind}: a round written {statistics.median(rates):,.0f} decisions/s"
                f" ({', '.join(f'{r:,.0f}' for r in rates)}); wait the router adds for a new"
                f" post: p50 {statistics.median(p50s):.1f} ms, p99 {statistics.median(p99s):.1f}"
                f" ms ({', '.join(f'{p:.1f}' for p in p99s)}), target p99 < 50 ms: {verdict}"
            )


if __name__ == "__main__":
    main()
