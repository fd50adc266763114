"""Record the histories the replay test checks: `python -m tests.histories.record [NAME...]`
(all scenarios, or the named ones: a new scenario is recorded alone).

Runs each scenario against a fresh dev server and a fresh SQLite file and writes its
history as JSON beside this file. Re-record only when a workflow change is meant to be
incompatible (and then version the workflow instead, if drafts are in flight anywhere).
Review SLAs are seconds long here, so the timed scenarios record their alarms.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from records import drafts, erasure
from records.db import Database
from records.migrations import upgrade
from records.post_models import Post
from records.settings import Settings
from tests.sealing import SealedHandle
from workflows import devserver
from workflows.approval import ResponseApproval
from workflows.contracts import (
    LOOK_AGAIN,
    Actor,
    DecisionRequest,
    DraftStart,
    EditRequest,
    PublishRequest,
    SubmitRequest,
    WithdrawRequest,
)
from workflows.worker import ACTIVITY_THREADS, build_worker

HERE = Path(__file__).resolve().parent
AGENT = Actor(username="agent", roles=["agent"])
COMMS = Actor(username="comms", roles=["comms"])
LEGAL = Actor(username="legal", roles=["legal"])
PUB = Actor(username="pub", roles=["publisher"])
FAULT = "We are sorry, this was our fault. We have sent you a direct message."
CLEAN = "Thanks for reaching out! We have sent you a direct message."
Handle = WorkflowHandle[Any, Any]


async def full_story(handle: Handle) -> None:
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    for actor, stage, decision, version, comment in (
        (COMMS, "comms", "approve", 1, None),
        (LEGAL, "legal", "request_changes", 1, "Do not admit fault."),
    ):
        request = DecisionRequest(
            actor=actor, stage=stage, decision=decision, version=version, comment=comment
        )
        await handle.execute_update(ResponseApproval.decide, request)
    await handle.execute_update(
        ResponseApproval.edit, EditRequest(actor=AGENT, body=CLEAN, expected_version=1)
    )
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    await handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=2),
    )
    await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=PUB))
    await handle.result()


async def approved_by_comms(handle: Handle) -> None:
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    await handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
    )


async def scheduled_then_withdrawn(handle: Handle) -> None:
    await approved_by_comms(handle)
    at = datetime.now(UTC) + timedelta(hours=2)
    await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=PUB, at=at))
    await handle.execute_update(ResponseApproval.withdraw, WithdrawRequest(actor=AGENT))
    await handle.result()


async def scheduled_then_published(handle: Handle) -> None:
    await approved_by_comms(handle)
    at = datetime.now(UTC) + timedelta(seconds=1)
    await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=PUB, at=at))
    await handle.result()


async def rejected(handle: Handle) -> None:
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    await handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(
            actor=COMMS, stage="comms", decision="reject", version=1, comment="Off-brand."
        ),
    )
    await handle.result()


async def approved_with_a_publish_time(
    handle: Handle, seconds: float, meanwhile: Callable[[], Awaitable[None]]
) -> None:
    """Submitted, a publish time (`seconds` from now) asked for during the review,
    `meanwhile`, then approved: the approval schedules it, and it is published."""
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=PUB, at=at))
    await meanwhile()
    await handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
    )
    await handle.result()


async def escalated_then_approved(handle: Handle) -> None:
    """Reminded and escalated (SLA) while in review, then approved and scheduled."""

    async def past_the_deadline() -> None:
        await asyncio.sleep(2.5)  # past the reminder (0.6 s) and the deadline (1.2 s)

    await approved_with_a_publish_time(handle, 4, past_the_deadline)


async def expired(handle: Handle) -> None:
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    await handle.result()  # the post's deadline (3 s) passes in review


async def looked_again_then_scheduled(handle: Handle) -> None:
    """Told to look again while nothing changed: the publish time asked for during the
    review is kept, and the approval schedules it."""

    async def told_to_look_again() -> None:
        await handle.signal(LOOK_AGAIN)
        await asyncio.sleep(0.5)

    await approved_with_a_publish_time(handle, 2, told_to_look_again)


async def erased_in_review(handle: Handle) -> None:
    """The customer's erasure withdraws the draft in review; told, its workflow ends."""
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    with DATABASE[0].write() as connection:
        erasure.erase_customer(connection, "@c-erased_in_review", actor="adm", role="admin")
    await handle.signal(LOOK_AGAIN)
    await handle.result()


SCENARIOS: dict[str, tuple[str, Callable[[Handle], Awaitable[None]]]] = {
    "full_story": (FAULT, full_story),
    "scheduled_then_withdrawn": (CLEAN, scheduled_then_withdrawn),
    "scheduled_then_published": (CLEAN, scheduled_then_published),
    "rejected": (CLEAN, rejected),
    "escalated_then_approved": (CLEAN, escalated_then_approved),
    "expired": (CLEAN, expired),
    "looked_again_then_scheduled": (CLEAN, looked_again_then_scheduled),
    "erased_in_review": (CLEAN, erased_in_review),
}
DATABASE: list[Database] = []  # the scenarios' own, for those that change the record
SETTINGS = Settings(sla_minutes={"comms": 0.02, "legal": 0.02}, sla_reminder_fraction=0.5)


async def main(names: list[str]) -> None:
    chosen = {n: SCENARIOS[n] for n in names} if names else SCENARIOS
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/record.db"
        upgrade(url)
        database = Database(url)
        DATABASE.append(database)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(devserver.find_binary()),
            dev_server_extra_args=devserver.extra_args(),
        )
        queue = f"record-{uuid.uuid4().hex[:6]}"
        with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
            async with build_worker(env.client, queue, database, executor, settings=SETTINGS):
                for name, (body, scenario) in chosen.items():
                    with database.write_session() as session:
                        post = Post(
                            channel="x",
                            external_id=name,
                            author=f"@c-{name}",
                            text="Hi",
                            url="https://x.example/1",
                            received_at=datetime.now(UTC),
                            respond_by=datetime.now(UTC),
                        )
                        session.add(post)
                        session.flush()
                        assert post.id is not None
                        draft_id = drafts.create(
                            session.connection(), post_id=post.id, author="agent", body=body
                        ).draft_id
                        expires = datetime.now(UTC) + timedelta(seconds=3)
                        start = DraftStart(
                            draft_id=draft_id,
                            author="agent",
                            expires_at=expires if name == "expired" else None,
                        )
                    started = await env.client.start_workflow(
                        ResponseApproval.run, start, id=f"draft-{start.draft_id}", task_queue=queue
                    )
                    handle: Any = SealedHandle(started)
                    await scenario(handle)
                    history = await handle.fetch_history()
                    (HERE / f"{name}.json").write_text(history.to_json())
                    print("recorded", name)
        await env.shutdown()
        database.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
