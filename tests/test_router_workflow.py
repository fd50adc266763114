"""The queues' router as the worker runs it (issue 23, item 3): `QueueRouter` gives a post
to an available agent when nudged (a post arrived) and on its timer, and a worker restart
loses nothing: the next worker's round gives what arrived meanwhile, once. Real Temporal dev
server, both databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from lifecycle.words import Presence, Role
from policies.versions import RuleBook
from records import routing
from records.db import Database
from records.ingest import store
from records.post_models import PostCreate
from records.tables import POSTS, QUEUES
from records.types import utcnow
from tests.helpers import eventually
from workflows.background_contracts import (
    RouterStart,
)
from workflows.router import QueueRouter
from workflows.worker import ACTIVITY_THREADS, build_worker

pytestmark = pytest.mark.temporal
RULES = RuleBook()


def arrive(database: Database, n: int) -> int:
    data = PostCreate.model_validate({
        "channel": "x", "external_id": f"w-{n}", "author": f"@c{n}",
        "text": f"@AcmeBank where is my card? order {n}", "url": f"https://x.example/{n}",
        "received_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    })  # fmt: skip
    with database.write_session() as session:
        [stored] = store(session, [data], rules=RULES, actor="test", actor_role="integration")
    return stored.post_id


def assignee(database: Database, post_id: int) -> str | None:
    with database.engine.connect() as connection:
        found = connection.execute(select(POSTS.c.assignee).where(POSTS.c.id == post_id))
        return found.scalar_one()


async def test_the_router_gives_posts_when_nudged_and_after_a_restart(
    temporal_env: WorkflowEnvironment, database: Database, make_user: Callable[..., str]
) -> None:
    make_user("ana", Role.agent)
    now = utcnow()
    with database.write() as connection:
        connection.execute(QUEUES.insert().values(
            name="all", position=1, strategy="longest_idle", channels=[], languages=[],
            topics=[], priorities=[], origins=[], created_at=now, updated_at=now,
        ))  # fmt: skip
        routing.set_presence(connection, "ana", Presence.available, actor="ana", role="agent")
    queue = f"router-{uuid.uuid4().hex[:8]}"
    first = arrive(database, 1)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            # A timer of an hour: only the first round and a nudge can give posts.
            handle = await temporal_env.client.start_workflow(
                QueueRouter.run, RouterStart(every_seconds=3600), id=f"{queue}-router",
                task_queue=queue,
            )  # fmt: skip
            assert await eventually(lambda: assignee(database, first) == "ana")
            second = arrive(database, 2)
            await handle.signal(QueueRouter.nudge)
            assert await eventually(lambda: assignee(database, second) == "ana")
    # The worker is gone; a post arrives; a new worker's round (nudged) gives it, once.
    third = arrive(database, 3)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            await handle.signal(QueueRouter.nudge)
            assert await eventually(lambda: assignee(database, third) == "ana")
    with database.engine.connect() as connection:
        assigned = (
            connection.execute(
                select(POSTS.c.id).where(POSTS.c.assignee == "ana").order_by(POSTS.c.id)
            )
            .scalars()
            .all()
        )
    assert list(assigned) == [first, second, third]  # capacity 3: each once
    await handle.terminate("test over")
