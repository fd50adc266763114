"""`bench/lifecycle.py`'s Countersign side: its users and posts, its `countersign api` and
`worker` processes (a group per task queue: one of each, and with `--scale-out` a second
group of two of each), and the drafts driven through them over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import http1
from bench.environment import free_port, own_secrets
from lifecycle.words import Role
from records import users
from records.db import Database
from records.fields import Channel
from records.post_models import Post

PASSWORD = "bench-password-123"  # noqa: S105 - throwaway bench users
FAULT = "We are sorry, this was our fault. A colleague will message you privately today."
REVIEWERS = (("agent", Role.agent), ("comms", Role.comms), ("legal", Role.legal),
             ("publisher", Role.publisher))  # fmt: skip


def seed(database: Database, count: int) -> list[int]:
    """The four people who take a draft through, and `count` posts to answer."""
    with database.write_session() as session:
        for name, role in REVIEWERS:
            users.create(session, username=name, roles=[role], password=PASSWORD,
                         actor="bench", actor_role="admin")  # fmt: skip
        now = datetime.now(UTC)
        posts = [
            Post(channel=Channel.x, external_id=f"bench-{n}", author="@c", text="Help!",
                 url=f"https://x.example/{n}", received_at=now, respond_by=now)
            for n in range(count)
        ]  # fmt: skip
        session.add_all(posts)
        session.flush()
        return [p.id for p in posts if p.id is not None]


@dataclass
class Group:
    """API and worker processes serving one task queue; the API ports to send drafts to."""

    ports: list[int]
    processes: list[subprocess.Popen[bytes]]

    @property
    def pids(self) -> dict[str, list[int]]:
        roles: dict[str, list[int]] = defaultdict(list)
        for process in self.processes:
            roles[str(process.args[-1])].append(process.pid)  # type: ignore[index]
        return roles


def start_group(
    environment: dict[str, str], logs: Path, task_queue: str, apis: int, workers: int
) -> Group:
    """`apis` API and `workers` worker processes on `task_queue` (`environment`: the
    database, Temporal, the secrets)."""
    cli = [sys.executable, "-m", "countersign.cli"]
    ports = [free_port() for _ in range(apis)]
    processes = []
    for name, n in [("worker", n) for n in range(workers)] + [("api", n) for n in range(apis)]:
        settings = {"COUNTERSIGN_TASK_QUEUE": task_queue}
        if name == "api":
            settings["COUNTERSIGN_API_PORT"] = str(ports[n])
        log = (logs / f"{task_queue}-{name}-{n}.log").open("w")
        processes.append(subprocess.Popen([*cli, name], env={**environment, **settings},
                                          stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
    return Group(ports, processes)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


async def ready(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def run_countersign(
    ports: list[int], post_ids: list[int], clients: int
) -> tuple[float, dict[str, list[float]]]:
    """(seconds taken, timings per action). Each simulated client holds one keep-alive
    connection (see `http1`), to the API ports in turn: a load balancer's round robin."""
    timings: dict[str, list[float]] = defaultdict(list)
    gate = asyncio.Semaphore(clients)
    turn = itertools.cycle(ports)
    pool = [http1.Connection("127.0.0.1", next(turn)) for _ in range(clients)]
    tokens = {}
    for name, _ in REVIEWERS:
        status, token = await pool[0].request(
            "POST", "/api/v1/auth/token", form=f"username={name}&password={PASSWORD}"
        )
        assert status == 200, token
        tokens[name] = {"Authorization": f"Bearer {token['access_token']}"}

    async def timed(http: http1.Connection, name: str, path: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        status, answer = await http.request("POST", path, **kwargs)
        timings[name].append(time.perf_counter() - started)
        assert status in (200, 201), (name, status, answer)
        return answer

    async def one(post_id: int) -> None:
        async with gate:
            http = pool.pop()
            draft = await timed(http, "create", "/api/v1/drafts", headers=tokens["agent"],
                                json_body={"post_id": post_id, "body": FAULT})  # fmt: skip
            url = f"/api/v1/drafts/{draft['id']}"
            await timed(http, "submit", f"{url}/submit", headers=tokens["agent"])
            for stage in ("comms", "legal"):
                decision = {"stage": stage, "decision": "approve", "version": 1}
                await timed(http, stage, f"{url}/decisions", headers=tokens[stage],
                            json_body=decision)  # fmt: skip
            done = await timed(http, "publish", f"{url}/publish", headers=tokens["publisher"])
            assert done["status"] == "published"
            pool.append(http)

    started = time.perf_counter()
    await asyncio.gather(*(one(p) for p in post_ids))
    elapsed = time.perf_counter() - started
    for http in pool:
        await http.close()
    return elapsed, timings


def child_environment(url: str, temporal: str) -> dict[str, str]:
    """What the processes read: the database, Temporal, secrets of their own."""
    return {**os.environ, **own_secrets(), "COUNTERSIGN_DATABASE_URL": url,
            "COUNTERSIGN_TEMPORAL_ADDRESS": temporal}  # fmt: skip
