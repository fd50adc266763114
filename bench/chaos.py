"""Chaos under load (issue 25, item 1): two API and two worker processes on PostgreSQL and
the Temporal dev server, drafts driven through their whole lives at a steady rate (with
webhook notifications and a fake X taking the replies), while a random API or worker
process is killed (SIGKILL) and started again every few seconds, the Temporal server is
killed and restarted once, and PostgreSQL crashes once and stays down for a while.

At the end, with the load stopped and every process up again, it checks and prints:
- every draft reached its expected final state (published, rejected or withdrawn);
- each approved reply was posted exactly once (the fake channel's count);
- no decision is recorded twice;
- no notification is lost or doubled per person and event;
- `countersign audit verify` is ok;
- the clients' errors during the outages were 503 with Retry-After, never 500;
- the memory of each process at the end against its start.

    .venv/bin/python bench/chaos.py [--minutes 10] [--rate 1.0] [--kill-every 5]
                                    [--db-outage 60] [--seed N] [--keep DIR]

It runs a PostgreSQL cluster of its own (initdb, as the `postgres` user when run as root,
on a Unix socket only), so that crashing it harms nobody else's; the processes' logs are
under the work folder (`--keep DIR` keeps it). `tests/test_chaos.py` runs it for a minute
in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import text

from bench import chaos_checks
from bench.chaos_cluster import PrivatePostgres, Slot, TemporalServer
from bench.chaos_load import PASSWORD, PEOPLE, Clients, Draft
from bench.environment import own_secrets
from lifecycle.words import Role
from records import channels, notifications, users, vault
from records.db import Database
from records.fields import Channel
from records.migrations import upgrade
from records.notifications import EVENTS, IN_APP, WEBHOOK
from records.post_models import Post
from records.settings import Settings
from tests.fakes import FakeX, running_fake_x, x_account
from tests.helpers import JsonHandler, serve

ROLES = {"agent": Role.agent, "comms": Role.comms, "pub": Role.publisher}
HOOK_SECRET = "chaos-webhook-secret"  # noqa: S105 - the bench's own receiver


@dataclass(frozen=True)
class Options:
    seconds: float = 600.0
    rate: float = 1.0  # drafts started per second
    kill_every: float = 5.0
    db_outage: float = 60.0  # seconds PostgreSQL stays down
    apis: int = 2
    workers: int = 2
    seed: int | None = None
    settle_seconds: float = 600.0  # for the drafts under way when the load stops


@dataclass
class Report:
    checks: list[chaos_checks.Check] = field(default_factory=list)
    # Per process: resident bytes at its first start and at the end, its starts, and how
    # long the one running at the end had been up (seconds).
    memory: list[tuple[str, int | None, int | None, int, float]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.holds for c in self.checks)

    def lines(self) -> list[str]:
        out = [f"  {'ok  ' if c.holds else 'FAIL'} {c.name}: {c.found}" for c in self.checks]
        out.append("  memory per process (resident; the start is its first start):")
        for name, start, end, starts, up in self.memory:
            ratio = f"{end / start:.2f}x" if start and end else "n/a"
            out.append(f"    {name}: {_mib(start)} at the start, {_mib(end)} at the end "
                       f"({ratio}; started {starts} times, the last up {up:.0f} s)")  # fmt: skip
        return out


def _mib(size: int | None) -> str:
    return f"{size / 2**20:.0f} MiB" if size else "n/a"


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Where notifications are delivered: each delivery's body kept, repeats included."""
    received: list[dict[str, Any]] = []

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.body()))
            self.answer(200, {"ok": True})

    with serve(Handler) as url:
        yield url, received


def seed(database: Database, fake_x: FakeX, count: int) -> list[int]:
    """The people (each told of every event in the app and by webhook), the X account and
    `count` posts on it to answer."""
    with database.write_session() as session:
        for name in PEOPLE:
            users.create(session, username=name, roles=[ROLES[name]], password=PASSWORD,
                         actor="bench", actor_role="admin")  # fmt: skip
    with database.write() as connection:
        account_id = channels.create(connection, x_account(fake_x, 10), actor="bench").id
        for name in PEOPLE:  # every event in the app and by webhook
            notifications.choose(connection, name, {e: [IN_APP, WEBHOOK] for e in EVENTS})
    now = datetime.now(UTC)
    with database.write_session() as session:
        posts = [
            Post(channel=Channel.x, external_id=str(1_861_000_000_000_000_000 + n), author="@c",
                 text="Where is my parcel?", url=f"https://x.example/{n}", received_at=now,
                 respond_by=now + timedelta(days=2), account_id=account_id)
            for n in range(count)
        ]  # fmt: skip
        session.add_all(posts)
        session.flush()
        return [p.id for p in posts if p.id is not None]


class Chaos:
    """Kills and restarts: a random process every `kill_every` seconds, Temporal once at a
    third of the run, PostgreSQL once at two thirds; and any process that died on its own
    is started again (and reported)."""

    def __init__(self, options: Options, slots: list[Slot], temporal: TemporalServer,
                 postgres: PrivatePostgres, report: Report) -> None:  # fmt: skip
        self.options, self.slots, self.report = options, slots, report
        self.temporal, self.postgres = temporal, postgres
        self.started = time.monotonic()
        self.random = random.Random(options.seed)

    def note(self, what: str) -> None:
        line = f"{time.monotonic() - self.started:6.1f}s {what}"
        self.report.events.append(line)
        print(line, flush=True)

    async def kill_at_random(self, until: float) -> None:
        while time.monotonic() + self.options.kill_every < until:
            await asyncio.sleep(self.options.kill_every)
            slot = self.random.choice(self.slots)
            slot.kill()
            self.note(f"killed {slot.name}")
            slot.start()

    async def outages(self) -> None:
        third = self.options.seconds / 3
        await asyncio.sleep(third)
        self.temporal.kill()
        self.note("killed the Temporal server")
        await asyncio.to_thread(self.temporal.start)
        self.note("the Temporal server is back")
        await asyncio.sleep(third)
        await asyncio.to_thread(self.postgres.crash)
        self.note(f"PostgreSQL crashed (down for {self.options.db_outage:.0f} s)")
        await asyncio.sleep(self.options.db_outage)
        await asyncio.to_thread(self.postgres.start)
        self.note("PostgreSQL is back")

    async def keep_up(self) -> None:
        while True:
            await asyncio.sleep(1)
            for slot in self.slots:
                if not slot.alive:
                    self.note(f"{slot.name} had exited by itself; started again")
                    slot.start()


async def until_ready(slots: list[Slot], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not all(await asyncio.gather(*(asyncio.to_thread(s.ready) for s in slots))):
        if time.monotonic() > deadline:
            raise RuntimeError("the processes did not become ready; see their logs")
        await asyncio.sleep(0.5)


async def deliveries_settled(database: Database, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    query = text("SELECT COUNT(*) FROM notification_deliveries WHERE status = 'pending'")
    while time.monotonic() < deadline:
        with database.engine.connect() as connection:
            if connection.execute(query).scalar_one() == 0:
                return
        await asyncio.sleep(1)


async def run(options: Options, workdir: Path) -> Report:
    report = Report()
    postgres, temporal = PrivatePostgres(), TemporalServer(workdir)
    postgres.init()
    slots: list[Slot] = []
    tasks: list[asyncio.Task[Any]] = []  # the chaos's and the clients': cancelled on the way out
    try:
        upgrade(postgres.url)
        temporal.start()
        with running_fake_x() as fake_x, webhook_receiver() as (hook_url, received):
            secrets = own_secrets()
            environment = {
                **os.environ, **secrets,
                "COUNTERSIGN_DATABASE_URL": postgres.url,
                "COUNTERSIGN_TEMPORAL_ADDRESS": temporal.address,
                "COUNTERSIGN_TASK_QUEUE": "chaos",
                "COUNTERSIGN_AUDIT_CHECKPOINT_DIR": str(workdir / "checkpoints"),
                "COUNTERSIGN_OUTBOUND_ALLOW": json.dumps(["127.0.0.0/8"]),
                "COUNTERSIGN_NOTIFY_WEBHOOK_URL": hook_url,
                "COUNTERSIGN_NOTIFY_WEBHOOK_SECRET": HOOK_SECRET,
                "COUNTERSIGN_LOG_FORMAT": "json",
            }  # fmt: skip
            database = Database(postgres.url)
            # The channel account's token is sealed with the processes' key, not this one's.
            sealing = vault.Vault.of(Settings(secrets_key=secrets["COUNTERSIGN_SECRETS_KEY"]))
            with vault.configured(sealing):
                post_ids = seed(database, fake_x, int(options.seconds * options.rate))
            logs = workdir / "logs"
            logs.mkdir(exist_ok=True)
            slots = [Slot("api", n, environment, logs) for n in range(options.apis)]
            slots += [Slot("worker", n, environment, logs) for n in range(options.workers)]
            for slot in slots:
                slot.start()
            await until_ready(slots)
            for slot in slots:
                slot.rss_at_start = slot.rss()
            clients = Clients([s.port for s in slots if s.kind == "api"], options.seed)
            await clients.sign_in()
            chaos = Chaos(options, slots, temporal, postgres, report)
            end_of_load = time.monotonic() + options.seconds
            background = [
                asyncio.create_task(chaos.kill_at_random(end_of_load)),
                asyncio.create_task(chaos.outages()),
                asyncio.create_task(chaos.keep_up()),
            ]
            tasks += background
            drafts = [Draft(n, post_id) for n, post_id in enumerate(post_ids)]
            lives = []
            for draft in drafts:
                lives.append(asyncio.create_task(clients.live(draft)))
                tasks.append(lives[-1])
                await asyncio.sleep(1 / options.rate)
            chaos.note(f"load stopped: {len(drafts)} drafts started")
            for task in background[:2]:
                await task  # the kills and the outages: a restart that failed fails the run
            done, pending = await asyncio.wait(lives, timeout=options.settle_seconds)
            chaos.note(f"{len(done)} drafts settled, {len(pending)} still under way")
            for task in pending:
                task.cancel()
            background[2].cancel()
            await until_ready(slots)
            await deliveries_settled(database)
            await clients.close()
            report.checks = [
                chaos_checks.final_states(database, drafts),
                chaos_checks.posted_once(database, fake_x.tweets),
                chaos_checks.decisions_once(database, drafts),
                chaos_checks.notifications_once(database, received),
                chaos_checks.audit_verifies(environment),
                chaos_checks.client_errors(clients.answers),
            ]
            now = time.monotonic()
            report.memory = [
                (s.name, s.rss_at_start, s.rss(), s.starts, now - s.started_at) for s in slots
            ]
            report.checks.append(chaos_checks.memory(report.memory))
            database.dispose()
    finally:
        for task in tasks:
            task.cancel()
        for slot in slots:  # all at once: each may take seconds to drain
            slot.terminate()
        for slot in slots:
            slot.stop()
        temporal.kill()
        postgres.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1.0, help="drafts started per second")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds")
    parser.add_argument("--db-outage", type=float, default=60.0, help="seconds")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folder here")
    args = parser.parse_args()
    options = Options(seconds=args.minutes * 60, rate=args.rate, kill_every=args.kill_every,
                      db_outage=args.db_outage, seed=args.seed)  # fmt: skip
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(dir=args.keep))
        report = asyncio.run(run(options, workdir))
    else:
        with tempfile.TemporaryDirectory() as folder:
            report = asyncio.run(run(options, Path(folder)))
    print(f"chaos: {args.minutes:g} min at {args.rate:g} drafts/s, a kill every "
          f"{args.kill_every:g} s, PostgreSQL down {args.db_outage:g} s")  # fmt: skip
    print("\n".join(report.lines()))
    print("all checks hold" if report.ok else "SOME CHECKS FAIL")
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
