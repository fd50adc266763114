"""Nothing is lost and nothing is posted twice when the worker process dies (SIGKILL)
during review or in the middle of publishing; a restarted worker finishes the draft."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from lifecycle.words import Role
from records import audit, channels
from records.db import Database
from records.draft_models import OutboxMessage, Publication
from records.settings import Settings
from tests.conftest import LOOPBACK
from tests.fakes import FakeX, running_fake_x, x_account
from tests.helpers import eventually, insert_post, signed_in, submitted_draft
from workflows.connection import TemporalGateway

pytestmark = [pytest.mark.temporal, pytest.mark.long]


class WorkerProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.output: list[str] = []

    async def start(self, **extra: str) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fault_worker",
            env={**self.env, **extra},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        await self.wait_for("READY")

    async def wait_for(self, marker: str, timeout: float = 60) -> None:
        assert self.process is not None and self.process.stdout is not None

        async def scan() -> None:
            assert self.process is not None and self.process.stdout is not None
            while True:
                line = (await self.process.stdout.readline()).decode()
                if not line:
                    raise AssertionError("worker exited:\n" + "".join(self.output))
                self.output.append(line)
                if line.startswith(marker):
                    return

        await asyncio.wait_for(scan(), timeout)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@pytest.fixture
async def setup(
    settings: Settings,
    database: Database,
    database_url: str,
    temporal_env: WorkflowEnvironment,
    temporal_gateway: TemporalGateway,
    make_user: Callable[..., str],
) -> AsyncIterator[tuple[httpx.AsyncClient, WorkerProcess, dict[str, dict[str, str]]]]:
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    live = settings.model_copy(update={"task_queue": queue, "workflow_id_prefix": f"{queue}-"})
    target = temporal_env.client.service_client.config.target_host
    worker = WorkerProcess(
        {
            **os.environ,
            "COUNTERSIGN_DATABASE_URL": database_url,
            "COUNTERSIGN_TEMPORAL_ADDRESS": target,
            "COUNTERSIGN_TASK_QUEUE": queue,
            # The fake platforms listen on loopback (tests/conftest.py: LOOPBACK).
            "COUNTERSIGN_OUTBOUND_ALLOW": json.dumps(LOOPBACK),
        }
    )
    for name, role in (("agent", Role.agent), ("comms", Role.comms), ("pub", Role.publisher)):
        make_user(name, role)
    app = create_app(live, database=database, temporal=temporal_gateway)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            people = await signed_in(client, "agent", "comms", "pub")
            try:
                yield client, worker, people
            finally:
                if worker.process is not None and worker.process.returncode is None:
                    await worker.kill()


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with running_fake_x() as state:
        yield state


def posted(database: Database) -> list[OutboxMessage]:
    with database.read_session() as session:
        return list(session.exec(select(OutboxMessage)).all())


async def test_worker_killed_during_review_then_restarted_finishes_the_draft(
    setup: tuple[httpx.AsyncClient, WorkerProcess, dict[str, dict[str, str]]],
    database: Database,
) -> None:
    client, worker, people = setup
    await worker.start()
    url = await submitted_draft(client, people)
    await worker.kill()
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    decision = asyncio.create_task(
        client.post(f"{url}/decisions", headers=people["comms"], json=approve)
    )
    await asyncio.sleep(1)
    assert not decision.done()  # waits for a worker, loses nothing
    await worker.start()
    response = await asyncio.wait_for(decision, 60)
    assert response.status_code == 200 and response.json()["status"] == "approved"
    published = await client.post(f"{url}/publish", headers=people["pub"])
    assert published.json()["status"] == "published"
    assert len(posted(database)) == 1


async def test_worker_killed_after_x_took_the_tweet_posts_it_once(
    setup: tuple[httpx.AsyncClient, WorkerProcess, dict[str, dict[str, str]]],
    database: Database,
    fake_x: FakeX,
) -> None:
    """The same against a platform: the fake X stores the tweet, then stalls; the worker
    dies before the answer; its successor finds the tweet on X instead of posting again."""
    client, worker, people = setup
    account = x_account(fake_x, 120)
    with database.write() as connection:
        account_id = channels.create(connection, account, actor="admin").id
        post_id = insert_post(connection, account_id=account_id, external_id="1861000000000000001")
    await worker.start()
    url = await submitted_draft(client, people, post_id)
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    await client.post(f"{url}/decisions", headers=people["comms"], json=approve)
    fake_x.script = ["stall"]
    publish = asyncio.create_task(client.post(f"{url}/publish", headers=people["pub"]))
    assert await eventually(lambda: len(fake_x.tweets) == 1)
    await worker.kill()  # X has the tweet; the worker never heard back
    await worker.start()
    response = await asyncio.wait_for(publish, 120)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "published"
    [tweet] = fake_x.tweets
    assert response.json()["publication"]["external_id"] == tweet["id"]
    with database.read_session() as session:
        publication = session.exec(select(Publication)).one()
        assert (publication.status, publication.attempts) == ("confirmed", 2)


async def test_worker_killed_mid_publish_posts_exactly_once(
    setup: tuple[httpx.AsyncClient, WorkerProcess, dict[str, dict[str, str]]],
    database: Database,
) -> None:
    client, worker, people = setup
    await worker.start()
    url = await submitted_draft(client, people)
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    await client.post(f"{url}/decisions", headers=people["comms"], json=approve)
    await worker.kill()
    await worker.start(FAULT_PUBLISH_DELAY="120")  # the platform takes the post, then stalls
    publish = asyncio.create_task(client.post(f"{url}/publish", headers=people["pub"]))
    await worker.wait_for("POSTED")
    await worker.kill()  # after the request left, before the confirmation
    assert len(posted(database)) == 1
    await worker.start()
    response = await asyncio.wait_for(publish, 120)  # the activity times out, then retries
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "published"
    assert len(posted(database)) == 1  # found on the channel, not posted again
    with database.read_session() as session:
        publication = session.exec(select(Publication)).one()
        assert (publication.status, publication.attempts) == ("confirmed", 2)
        assert audit.verify(session).ok
