"""Lifecycle throughput: N drafts (default 500, 50 concurrent clients) through create ->
submit -> comms -> legal -> publish over HTTP against the real API and worker processes,
and, in the same run on the same Temporal server, N bare workflows with the same four
updates and one activity. Rounds alternate the sides, so drift on the machine falls on
all alike. Prints drafts/s, p50/p99 per action, the CPU each process spent per draft, the
server's calls and the history bytes per draft on each side (where the time goes), and the
ratio to bare.

The HTTP load generator is a lean keep-alive client (`bench/http1.py`): it shares the cores
with what it measures, and httpx alone cost as much CPU per draft as the API.

    .venv/bin/python bench/lifecycle.py [--drafts N] [--clients N] [--rounds N] [--floor]
                                        [--profile DIR]

`--floor` adds two sides between bare and Countersign, to show where the gap comes from:
- the bare workflow with each review step recorded in a local activity that does nothing:
  what the design (a local activity per transition, see `workflows.approval`) costs in
  Temporal alone;
- the same workflow driven over HTTP through `bench/thin_api.py`, a FastAPI app with a
  Temporal client and nothing else (no authentication, database or policy): what the
  stack costs before any of the product's own work.
Countersign's ratio to the second is what its own code costs.

`--profile DIR` samples the API and worker processes with py-spy for the run and prints
where their CPU went, by function (`bench/lifecycle_profile.py`).

The bare sides are in `bench/lifecycle_baselines.py`, the readings of CPU per process and
of the server's calls in `bench/lifecycle_costs.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx
import uvloop
from temporalio.testing import WorkflowEnvironment

from bench import http1
from bench.environment import own_secrets
from bench.lifecycle_baselines import ACTIONS, BareRecordedApproval, run_bare, run_thin
from bench.lifecycle_costs import (
    cpu_seconds,
    history_bytes,
    report_cpu,
    report_history,
    report_server,
    server_counts,
)
from bench.lifecycle_profile import Profile
from lifecycle.words import Role
from records import users
from records.db import Database
from records.fields import Channel
from records.migrations import upgrade
from records.post_models import Post
from workflows import devserver

PASSWORD = "bench-password-123"  # noqa: S105 - throwaway bench users
FAULT = "We are sorry, this was our fault. A colleague will message you privately today."
TARGET = 0.7  # of bare Temporal's drafts/s


# --- Countersign over HTTP -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_countersign(port: int, post_ids: list[int], clients: int) -> tuple[float, dict]:
    """(seconds taken, timings per action). Each simulated client holds one keep-alive
    connection (see `http1`)."""
    timings: dict[str, list[float]] = defaultdict(list)
    gate = asyncio.Semaphore(clients)
    pool = [http1.Connection("127.0.0.1", port) for _ in range(clients)]
    tokens = {}
    for name in ("agent", "comms", "legal", "publisher"):
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
            draft = await timed(
                http,
                "create",
                "/api/v1/drafts",
                headers=tokens["agent"],
                json_body={"post_id": post_id, "body": FAULT},
            )
            url = f"/api/v1/drafts/{draft['id']}"
            await timed(http, "submit", f"{url}/submit", headers=tokens["agent"])
            for stage in ("comms", "legal"):
                await timed(
                    http,
                    stage,
                    f"{url}/decisions",
                    headers=tokens[stage],
                    json_body={"stage": stage, "decision": "approve", "version": 1},
                )
            done = await timed(http, "publish", f"{url}/publish", headers=tokens["publisher"])
            assert done["status"] == "published"
            pool.append(http)

    started = time.perf_counter()
    await asyncio.gather(*(one(p) for p in post_ids))
    elapsed = time.perf_counter() - started
    for http in pool:
        await http.close()
    return elapsed, timings


@dataclass
class Phase:
    """One side's totals over every round."""

    drafts: int = 0
    seconds: float = 0.0
    timings: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def rate(self) -> float:
        return self.drafts / self.seconds

    def add(self, drafts: int, seconds: float, timings: dict, cpu: tuple, calls: tuple) -> None:
        self.drafts, self.seconds = self.drafts + drafts, self.seconds + seconds
        for name, samples in timings.items():
            self.timings[name] += samples
        for total, (before, after) in ((self.cpu, cpu), (self.calls, calls)):
            for key, value in after.items():
                total[key] += value - before.get(key, 0.0)


def seed(database: Database, count: int) -> list[int]:
    with database.write_session() as session:
        for name, role in (
            ("agent", Role.agent),
            ("comms", Role.comms),
            ("legal", Role.legal),
            ("publisher", Role.publisher),
        ):
            users.create(
                session,
                username=name,
                roles=[role],
                password=PASSWORD,
                actor="bench",
                actor_role="admin",
            )
        posts = [
            Post(
                channel=Channel.x,
                external_id=f"bench-{n}",
                author="@c",
                text="Help!",
                url=f"https://x.example/{n}",
                received_at=datetime.now(UTC),
                respond_by=datetime.now(UTC),
            )
            for n in range(count)
        ]
        session.add_all(posts)
        session.flush()
        return [p.id for p in posts if p.id is not None]


def report_budget(
    count: int, bare_rate: float, thin: dict[str, float], countersign: dict[str, float]
) -> None:
    """`--floor`: the CPU a draft may take at the target rate, were every core busy, and
    what of it the thin stack leaves for Countersign's own work."""
    cores = os.cpu_count() or 1
    budget = cores / (TARGET * bare_rate) * 1000
    stack = sum(thin.values()) * 1000 / count
    own = sum(countersign.values()) * 1000 / count - stack
    print(
        f"\nCPU a draft may take at {TARGET} of bare ({cores} cores all busy): "
        f"{budget:.1f} ms; the thin stack takes {stack:.1f},\nleaving {budget - stack:.1f} ms "
        f"for Countersign's own work, which takes {own:.1f} ms (its CPU over the thin side's)"
    )


def report(label: str, rate: float, timings: dict) -> None:
    print(f"\n{label}: {rate:,.1f} drafts/s")
    for name in ACTIONS:
        samples = sorted(timings[name])
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        print(
            f"  {name:8} p50 {statistics.median(samples) * 1000:8.1f} ms   p99 {p99 * 1000:8.1f} ms"
        )


async def _ready(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drafts", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run bare workflows that record each review step in a no-op local activity "
        "(the cost of Countersign's design in Temporal alone)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the API and worker with py-spy; write their stacks to DIR, print the top",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="countersign-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        database = Database(url)
        post_ids = seed(database, args.drafts)
        metrics_port = free_port()
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(devserver.find_binary()),
            dev_server_database_filename=f"{tmp}/temporal.db",
            dev_server_extra_args=[
                *devserver.extra_args(Path(tmp) / "temporal.db"),
                "--metrics-port",
                str(metrics_port),
            ],
        )
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        target = env.client.service_client.config.target_host
        port = free_port()
        child_env = {
            **os.environ,
            **own_secrets(),
            "COUNTERSIGN_DATABASE_URL": url,
            "COUNTERSIGN_TEMPORAL_ADDRESS": target,
            "COUNTERSIGN_API_PORT": str(port),
        }
        cli = [sys.executable, "-m", "countersign.cli"]
        logs = Path(tmp)
        processes = [
            subprocess.Popen(
                [*cli, name],
                env=child_env,
                stdout=(logs / f"{name}.log").open("w"),
                stderr=subprocess.STDOUT,
            )
            for name in ("worker", "api")
        ]
        thin_port, thin_queue = free_port(), f"thin-{uuid.uuid4().hex[:6]}"
        if args.floor:
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(Path(__file__).with_name("thin_api.py")), str(thin_port)],
                    env={**child_env, "THIN_TASK_QUEUE": thin_queue},
                    stdout=(logs / "thin.log").open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        profile = None
        try:
            await _ready(f"http://127.0.0.1:{port}/readyz")
            if args.floor:
                await _ready(f"http://127.0.0.1:{thin_port}/docs")
            if args.profile:
                roles = {"worker": processes[0].pid, "api": processes[1].pid}
                profile = Profile(args.profile, roles)
            bare, floor, thin, countersign = Phase(), Phase(), Phase(), Phase()
            sides: dict[str, tuple[Phase, Callable[[list[int]], Awaitable[tuple[float, dict]]]]]
            sides = {"bare": (bare, lambda chunk: run_bare(env, len(chunk), args.clients))}
            if args.floor:
                sides["bare + LAs"] = (
                    floor,
                    lambda chunk: run_bare(env, len(chunk), args.clients, BareRecordedApproval),
                )
                sides["thin HTTP+LAs"] = (
                    thin,
                    lambda chunk: run_thin(env, thin_port, thin_queue, chunk, args.clients),
                )
            sides["countersign"] = (
                countersign,
                lambda chunk: run_countersign(port, chunk, args.clients),
            )
            # Rounds alternate the sides, so drift on the machine (other tenants, caches,
            # files growing) falls on every side alike.
            for chunk in (post_ids[r :: args.rounds] for r in range(args.rounds)):
                for phase, run in sides.values():
                    cpu, calls = cpu_seconds(), server_counts(metrics)
                    seconds, timings = await run(chunk)
                    phase.add(
                        len(chunk),
                        seconds,
                        timings,
                        (cpu, cpu_seconds()),
                        (calls, server_counts(metrics)),
                    )
            shape = f"{args.drafts} drafts, {args.clients} clients, {args.rounds} rounds"
            report(f"bare Temporal ({shape})", bare.rate, bare.timings)
            if args.floor:
                report(f"bare + 3 no-op local activities ({shape})", floor.rate, floor.timings)
                report(f"the same over a thin FastAPI front ({shape})", thin.rate, thin.timings)
            report(f"Countersign over HTTP ({shape})", countersign.rate, countersign.timings)
            report_cpu(args.drafts, {label: side.cpu for label, (side, _) in sides.items()})
            report_server(args.drafts, {label: side.calls for label, (side, _) in sides.items()})
            queries = {
                "bare": "WorkflowType = 'BareApproval'",
                "bare + LAs": (
                    f"WorkflowType = 'BareRecordedApproval' AND TaskQueue != '{thin_queue}'"
                ),
                "thin HTTP+LAs": f"TaskQueue = '{thin_queue}'",
                "countersign": "WorkflowType = 'ResponseApproval'",
            }
            report_history(
                {label: await history_bytes(env.client, queries[label]) for label in sides}
            )
            print()
            if args.floor:
                print(f"ratio bare + local activities / bare: {floor.rate / bare.rate:.2f}")
                print(f"ratio the same over thin HTTP / bare: {thin.rate / bare.rate:.2f}")
            if args.floor:
                own = countersign.rate / thin.rate
                print(f"ratio Countersign / the same over thin HTTP: {own:.2f}")
            ratio = countersign.rate / bare.rate
            print(f"ratio Countersign / bare: {ratio:.2f} (target >= {TARGET})")
            if args.floor:
                report_budget(args.drafts, bare.rate, thin.cpu, countersign.cpu)
            if profile is not None:
                stopping, profile = profile, None
                stopping.stop()
        finally:
            if profile is not None:
                stopping, profile = profile, None
                stopping.stop()
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
            await env.shutdown()
            database.dispose()


if __name__ == "__main__":
    uvloop.run(main())  # as the worker and the API run
