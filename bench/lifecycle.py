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
                                        [--database sqlite|postgresql] [--scale-out]
                                        [--profile DIR]

`--floor` adds two sides between bare and Countersign, to show where the gap comes from:
- the bare workflow with each review step recorded in a local activity that does nothing:
  what the design (a local activity per transition, see `workflows.approval`) costs in
  Temporal alone;
- the same workflow driven over HTTP through `bench/thin_api.py`, a FastAPI app with a
  Temporal client and nothing else (no authentication, database or policy): what the
  stack costs before any of the product's own work.
Countersign's ratio to the second is what its own code costs, and the run ends with issue
24's targets against it.

`--scale-out` adds a side: Countersign on two API and two worker processes (a task queue of
their own; the drafts' clients spread over the two APIs), against the one of each, for how
throughput grows with processes (on PostgreSQL: SQLite has one writer at a time).

`--profile DIR` samples the API and worker processes with py-spy for the run and prints
where their CPU went, by function (`bench/lifecycle_profile.py`).

The bare sides are in `bench/lifecycle_baselines.py`, the Countersign side's processes and
driver in `bench/lifecycle_countersign.py`, the readings of CPU per process and of the
server's calls in `bench/lifecycle_costs.py`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import uvloop
from temporalio.testing import WorkflowEnvironment

from bench.environment import DATABASES, free_port, scratch_database, stable_port
from bench.lifecycle_baselines import ACTIONS, BareRecordedApproval, run_bare, run_thin
from bench.lifecycle_costs import (
    cpu_seconds,
    history_bytes,
    report_cpu,
    report_history,
    report_server,
    server_counts,
)
from bench.lifecycle_countersign import (
    child_environment,
    ready,
    run_countersign,
    seed,
    start_group,
    stop,
)
from bench.lifecycle_profile import Profile
from records.db import Database
from records.migrations import upgrade
from workflows import devserver

# Issue 24's targets, against the thin stack (`--floor`) in the same run.
OF_THIN = 0.85  # Countersign's drafts/s over the thin stack's, at least
OWN_CPU_MS = 12.0  # Countersign's CPU per draft over the thin stack's, all processes, at most
P99_MS = {"submit": 250.0}  # p99 of each action at most; any other action:
P99_OTHER_MS = 150.0
HISTORY_OF_THIN = 1.5  # history bytes per draft over the thin stack's, at most


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


def report_targets(thin: Phase, countersign: Phase, count: int, history: dict) -> None:
    """`--floor`: issue 24's targets, each met or not, in this run."""
    own = (sum(countersign.cpu.values()) - sum(thin.cpu.values())) * 1000 / count
    rows = [
        (f"drafts/s of the thin stack's >= {OF_THIN}", countersign.rate / thin.rate,
         countersign.rate / thin.rate >= OF_THIN, "{:.2f}"),
        (f"own CPU over the thin stack <= {OWN_CPU_MS:.0f} ms a draft", own,
         own <= OWN_CPU_MS, "{:.1f} ms"),
    ]  # fmt: skip
    for name in ACTIONS:
        bound = P99_MS.get(name, P99_OTHER_MS)
        p99 = percentile(countersign.timings[name], 0.99) * 1000
        rows.append((f"p99 of {name} <= {bound:.0f} ms", p99, p99 <= bound, "{:.0f} ms"))
    if history.get("thin HTTP+LAs") and history.get("countersign"):
        times = history["countersign"] / history["thin HTTP+LAs"]
        rows.append((f"history bytes of the thin stack's <= {HISTORY_OF_THIN}", times,
                     times <= HISTORY_OF_THIN, "{:.2f}x"))  # fmt: skip
    print("\nissue 24's targets, in this run:")
    for label, value, met, shape in rows:
        print(f"  {label:48} {shape.format(value):>10}  {'met' if met else 'NOT MET'}")


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def report(label: str, rate: float, timings: dict) -> None:
    print(f"\n{label}: {rate:,.1f} drafts/s")
    for name in ACTIONS:
        p50, p99 = statistics.median(timings[name]) * 1000, percentile(timings[name], 0.99) * 1000
        print(f"  {name:8} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drafts", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database", choices=DATABASES, default="sqlite")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run bare workflows that record each review step in a no-op local activity "
        "(the cost of Countersign's design in Temporal alone), and the same over a thin "
        "FastAPI front; check issue 24's targets against it",
    )
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help="also run Countersign on two API and two worker processes",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the API and worker with py-spy; write their stacks to DIR, print the top",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="countersign-bench-") as tmp,
        scratch_database(args.database, Path(tmp)) as url,
    ):
        await run(args, url, Path(tmp))


async def run(args: argparse.Namespace, url: str, tmp: Path) -> None:
    upgrade(url)
    database = Database(url)
    post_ids = seed(database, args.drafts * (2 if args.scale_out else 1))
    metrics_port = stable_port()  # the dev server takes ports for its services: not this
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(devserver.find_binary()),
        dev_server_database_filename=f"{tmp}/temporal.db",
        dev_server_extra_args=[
            *devserver.extra_args(tmp / "temporal.db"),
            "--metrics-port",
            str(metrics_port),
        ],
    )
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    environment = child_environment(url, env.client.service_client.config.target_host)
    one = start_group(environment, tmp, "countersign", apis=1, workers=1)
    groups = [one]
    if args.scale_out:
        groups.append(start_group(environment, tmp, "countersign-x2", apis=2, workers=2))
    thin_port, thin_queue = free_port(), f"thin-{uuid.uuid4().hex[:6]}"
    thin_process = None
    if args.floor:
        thin_process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("thin_api.py")), str(thin_port)],
            env={**environment, "THIN_TASK_QUEUE": thin_queue},
            stdout=(tmp / "thin.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    profile = None
    try:
        for group in groups:
            for port in group.ports:
                await ready(f"http://127.0.0.1:{port}/readyz")
        if args.floor:
            await ready(f"http://127.0.0.1:{thin_port}/docs")
        if args.profile:
            profile = Profile(args.profile, {role: pids[0] for role, pids in one.pids.items()})
        bare, floor, thin, countersign, doubled = Phase(), Phase(), Phase(), Phase(), Phase()
        drafts = post_ids[: args.drafts]
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
            lambda chunk: run_countersign(one.ports, chunk, args.clients),
        )
        if args.scale_out:  # the same drafts' shapes, on posts of their own
            shift = args.drafts
            sides["countersign x2"] = (
                doubled,
                lambda chunk: run_countersign(
                    groups[1].ports, [post_ids[shift + drafts.index(p)] for p in chunk],
                    args.clients,
                ),
            )  # fmt: skip
        # Rounds alternate the sides, so drift on the machine (other tenants, caches,
        # files growing) falls on every side alike.
        for chunk in (drafts[r :: args.rounds] for r in range(args.rounds)):
            for phase, side in sides.values():
                cpu, calls = cpu_seconds(), server_counts(metrics)
                seconds, timings = await side(chunk)
                phase.add(len(chunk), seconds, timings, (cpu, cpu_seconds()),
                          (calls, server_counts(metrics)))  # fmt: skip
        if profile is not None:
            stopping, profile = profile, None
            stopping.stop()
        shape = (
            f"{args.drafts} drafts, {args.clients} clients, {args.rounds} rounds, {args.database}"
        )
        report(f"bare Temporal ({shape})", bare.rate, bare.timings)
        if args.floor:
            report(f"bare + 3 no-op local activities ({shape})", floor.rate, floor.timings)
            report(f"the same over a thin FastAPI front ({shape})", thin.rate, thin.timings)
        report(f"Countersign over HTTP, 1 API + 1 worker ({shape})", countersign.rate,
               countersign.timings)  # fmt: skip
        if args.scale_out:
            report(f"Countersign over HTTP, 2 APIs + 2 workers ({shape})", doubled.rate,
                   doubled.timings)  # fmt: skip
        report_cpu(args.drafts, {label: side.cpu for label, (side, _) in sides.items()})
        report_server(args.drafts, {label: side.calls for label, (side, _) in sides.items()})
        queries = {
            "bare": "WorkflowType = 'BareApproval'",
            "bare + LAs": f"WorkflowType = 'BareRecordedApproval' AND TaskQueue != '{thin_queue}'",
            "thin HTTP+LAs": f"TaskQueue = '{thin_queue}'",
            "countersign": "WorkflowType = 'ResponseApproval' AND TaskQueue = 'countersign'",
            "countersign x2": "WorkflowType = 'ResponseApproval' AND TaskQueue = 'countersign-x2'",
        }
        history = {label: await history_bytes(env.client, queries[label]) for label in sides}
        report_history(history)
        print()
        if args.floor:
            print(f"ratio bare + local activities / bare: {floor.rate / bare.rate:.2f}")
            print(f"ratio the same over thin HTTP / bare: {thin.rate / bare.rate:.2f}")
            own = countersign.rate / thin.rate
            print(f"ratio Countersign / the same over thin HTTP: {own:.2f}")
        print(f"ratio Countersign / bare: {countersign.rate / bare.rate:.2f}")
        if args.scale_out:
            print(f"ratio 2 APIs + 2 workers / 1 + 1: {doubled.rate / countersign.rate:.2f}")
        if args.floor:
            report_targets(thin, countersign, args.drafts, history)
    finally:
        if profile is not None:
            profile.stop()
        stop([*(p for group in groups for p in group.processes),
              *([thin_process] if thin_process else [])])  # fmt: skip
        await env.shutdown()
        database.dispose()


if __name__ == "__main__":
    uvloop.run(main())  # as the worker and the API run
