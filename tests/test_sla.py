"""Every time limit: review SLAs, escalation, backup reviewers, post expiry and scheduled
publishing, on the time-skipping test server (hours pass in moments) with the real worker
and database.

The server skips time only when told (`env.sleep`), so each test moves the clock to just
before a moment, checks nothing happened, then just past it, and checks it did."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from lifecycle.words import Role
from policies.engine import RuleSet
from policies.sla import ServiceLevels
from records import drafts, users
from records.db import Database
from records.errors import Conflict
from records.settings import Settings
from records.tables import DRAFTS, EVENTS, NOTIFICATIONS, POSTS, PUBLICATIONS, STAGE_REVIEWS
from tests.helpers import insert_post
from tests.sealing import SealedHandle
from workflows.approval import ResponseApproval
from workflows.contracts import (
    Actor,
    DecisionRequest,
    DraftStart,
    EditRequest,
    PublishRequest,
    SubmitRequest,
    WithdrawRequest,
)
from workflows.worker import ACTIVITY_THREADS, build_worker

pytestmark = pytest.mark.temporal

CLEAN = "Thanks for reaching out! We have sent you a direct message to sort this out."
FAULT = "We are sorry, this was our fault. We have sent you a direct message."
AGENT = Actor(username="agent", roles=["agent"])
COMMS = Actor(username="comms1", roles=["comms"])
LEGAL = Actor(username="legal1", roles=["legal"])
BOSS = Actor(username="boss", roles=["supervisor"])
SETTINGS = Settings(
    sla_minutes={"comms": 30, "legal": 240},
    sla_priority_factors={"urgent": 0.5},
    sla_reminder_fraction=0.5,
    sla_backup_roles={"legal": "supervisor"},
    post_deadline_minutes={"normal": 24 * 60, "urgent": 4 * 60},
)


@dataclass
class Clock:
    env: WorkflowEnvironment
    database: Database
    queue: str
    started: list[WorkflowHandle] = field(default_factory=list)

    async def draft(self, body: str = CLEAN, priority: str = "normal") -> WorkflowHandle:
        received = await self.env.get_current_time()
        with self.database.write() as connection:
            post_id = insert_post(connection, received_at=received, priority=priority)
            created = drafts.create(
                connection,
                post_id=post_id,
                author="agent",
                body=body,
                deadline=ServiceLevels.of(SETTINGS).post_deadline,
            )
        started = await self.env.client.start_workflow(
            ResponseApproval.run,
            DraftStart(draft_id=created.draft_id, author="agent", expires_at=created.expires_at),
            id=f"draft-{created.draft_id}-{uuid.uuid4().hex[:6]}",
            task_queue=self.queue,
        )
        handle: Any = SealedHandle(started, self.env)
        self.started.append(handle)
        return handle

    async def stop(self) -> None:
        """End this test's workflows: the server's clock is shared, and a timer of a
        workflow whose worker has gone would hold up the next test's skipping."""
        for handle in self.started:
            with contextlib.suppress(RPCError):
                await handle.terminate("test over")

    async def advance(self, minutes: float) -> None:
        await self.env.sleep(timedelta(minutes=minutes))

    async def settled(self, handle: WorkflowHandle, predicate: Callable[[], bool]) -> bool:
        """Whether `predicate` holds once the worker has caught up (a query waits for the
        workflow's pending tasks; activities may still be committing, so poll briefly)."""
        await handle.query(ResponseApproval.current)
        for _ in range(50):
            if predicate():
                return True
            await asyncio.sleep(0.05)
        return False

    def actions(self, draft_id: int) -> list[str]:
        with self.database.engine.connect() as c:
            rows = c.execute(
                select(EVENTS.c.action).where(EVENTS.c.draft_id == draft_id).order_by(EVENTS.c.seq)
            )
            return [r.action for r in rows]

    def told(self, event: str, draft_id: int) -> list[str]:
        with self.database.engine.connect() as c:
            rows = c.execute(
                select(NOTIFICATIONS.c.recipient)
                .where(NOTIFICATIONS.c.event == event, NOTIFICATIONS.c.draft_id == draft_id)
                .order_by(NOTIFICATIONS.c.recipient)
            )
            return [r.recipient for r in rows]

    def row(self, table: object, draft_id: int) -> object:
        with self.database.engine.connect() as c:
            column = table.c.id if table is DRAFTS else table.c.draft_id  # type: ignore[attr-defined]
            return c.execute(select(table).where(column == draft_id)).first()  # type: ignore[call-overload]


@pytest.fixture
async def clock(
    time_skipping_env: WorkflowEnvironment, database: Database, make_user: Callable[..., str]
) -> AsyncIterator[Clock]:
    for name, role in [
        ("agent", Role.agent),
        ("comms1", Role.comms),
        ("comms2", Role.comms),
        ("legal1", Role.legal),
        ("boss", Role.supervisor),
        ("pub", Role.publisher),
    ]:
        make_user(name, role)
    queue = f"sla-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            time_skipping_env.client, queue, database, executor, settings=SETTINGS
        )
        async with worker:
            clock = Clock(time_skipping_env, database, queue)
            try:
                yield clock
            finally:
                await clock.stop()


def draft_id_of(handle: WorkflowHandle) -> int:
    return int(handle.id.split("-")[1])


async def test_reviewers_are_reminded_at_half_time_then_supervisors_told_at_the_deadline(
    clock: Clock,
) -> None:
    handle = await clock.draft()
    draft_id = draft_id_of(handle)
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    assert clock.told("review_requested", draft_id) == ["comms1", "comms2"]
    review = clock.row(STAGE_REVIEWS, draft_id)
    assert review.due_at - review.opened_at == timedelta(minutes=30)  # type: ignore[attr-defined]

    await clock.advance(14)
    await handle.query(ResponseApproval.current)
    assert "draft.sla_reminder" not in clock.actions(draft_id)
    await clock.advance(2)  # 16 minutes: past half of 30
    assert await clock.settled(handle, lambda: "draft.sla_reminder" in clock.actions(draft_id))
    assert clock.told("reminder", draft_id) == ["comms1", "comms2"]
    assert clock.told("escalated", draft_id) == []

    await clock.advance(13)  # 29 minutes
    await handle.query(ResponseApproval.current)
    assert "draft.sla_breached" not in clock.actions(draft_id)
    await clock.advance(2)  # 31 minutes
    assert await clock.settled(handle, lambda: "draft.sla_breached" in clock.actions(draft_id))
    assert clock.told("escalated", draft_id) == ["boss"]
    draft = clock.row(DRAFTS, draft_id)
    assert (draft.status, draft.stage, draft.sla_breached) == ("in_review", "comms", True)  # type: ignore[attr-defined]
    assert clock.row(STAGE_REVIEWS, draft_id).breached_at is not None  # type: ignore[attr-defined]

    # Still in review: a decision closes it, and no alarm goes off for it afterwards.
    decision = DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1)
    assert (await handle.execute_update(ResponseApproval.decide, decision)).status == "approved"
    assert (await handle.query(ResponseApproval.current)).sla_breached is False
    assert clock.row(STAGE_REVIEWS, draft_id).outcome == "approve"  # type: ignore[attr-defined]
    assert clock.actions(draft_id).count("draft.sla_reminder") == 1
    assert clock.actions(draft_id).count("draft.sla_breached") == 1


async def test_no_alarm_after_a_decision_and_the_next_stage_has_its_own_clock(
    clock: Clock,
) -> None:
    handle = await clock.draft(FAULT)  # comms, then legal
    draft_id = draft_id_of(handle)
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    await clock.advance(10)
    decision = DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1)
    await handle.execute_update(ResponseApproval.decide, decision)
    assert clock.told("review_requested", draft_id) == ["comms1", "comms2", "legal1"]

    # Comms' reminder (15 min) and deadline (30 min) never come; legal's (2 h, 4 h) do.
    await clock.advance(110)
    await handle.query(ResponseApproval.current)
    assert "draft.sla_reminder" not in clock.actions(draft_id)
    await clock.advance(20)
    assert await clock.settled(handle, lambda: "draft.sla_reminder" in clock.actions(draft_id))
    assert clock.told("reminder", draft_id) == ["legal1"]
    legal = DecisionRequest(actor=LEGAL, stage="legal", decision="approve", version=1)
    await handle.execute_update(ResponseApproval.decide, legal)
    await clock.advance(300)
    await handle.query(ResponseApproval.current)
    assert "draft.sla_breached" not in clock.actions(draft_id)
    assert clock.told("approved", draft_id) == ["agent", "pub"]  # the author and the publishers


async def test_urgent_posts_halve_the_review_time(clock: Clock) -> None:
    handle = await clock.draft(priority="urgent")
    draft_id = draft_id_of(handle)
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    review = clock.row(STAGE_REVIEWS, draft_id)
    assert review.due_at - review.opened_at == timedelta(minutes=15)  # type: ignore[attr-defined]
    await clock.advance(8)  # past half of 15
    assert await clock.settled(handle, lambda: "draft.sla_reminder" in clock.actions(draft_id))
    await clock.advance(8)
    assert await clock.settled(handle, lambda: "draft.sla_breached" in clock.actions(draft_id))


async def test_an_overdue_stage_may_be_decided_by_its_backup_role(clock: Clock) -> None:
    handle = await clock.draft(FAULT)
    draft_id = draft_id_of(handle)
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    await handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
    )
    by_boss = DecisionRequest(actor=BOSS, stage="legal", decision="approve", version=1)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(ResponseApproval.decide, by_boss)
    assert getattr(refused.value.cause, "type", "") == "Forbidden"

    await clock.advance(241)
    assert await clock.settled(handle, lambda: "draft.sla_breached" in clock.actions(draft_id))
    assert clock.told("escalated", draft_id) == ["boss"]  # the supervisor is the backup too
    assert (await handle.execute_update(ResponseApproval.decide, by_boss)).status == "approved"
    assert (await handle.query(ResponseApproval.current)).reviewers["boss"] == "legal"


async def test_a_draft_still_open_at_the_post_deadline_expires(clock: Clock) -> None:
    handle = await clock.draft()
    draft_id = draft_id_of(handle)
    expires = clock.row(DRAFTS, draft_id).expires_at  # type: ignore[attr-defined]
    assert expires is not None
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    await clock.advance(23 * 60 + 50)
    state = await handle.query(ResponseApproval.current)
    assert state.status == "in_review"

    await clock.advance(15)
    state = await handle.result()
    assert state.status == "expired"
    draft = clock.row(DRAFTS, draft_id)
    assert (draft.status, draft.stage) == ("expired", None)  # type: ignore[attr-defined]
    assert clock.actions(draft_id)[-1] == "draft.expired"
    assert clock.told("expired", draft_id) == ["agent", "boss"]
    assert clock.row(STAGE_REVIEWS, draft_id).outcome == "expired"  # type: ignore[attr-defined]
    with clock.database.engine.connect() as c:
        post_id = clock.row(DRAFTS, draft_id).post_id  # type: ignore[attr-defined]
        assert c.execute(select(POSTS.c.status).where(POSTS.c.id == post_id)).scalar() == "expired"


async def test_a_published_reply_never_expires(clock: Clock) -> None:
    handle = await clock.draft()
    draft_id = draft_id_of(handle)
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    await handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
    )
    publisher = Actor(username="pub", roles=["publisher"])
    await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=publisher))
    state = await handle.result()
    assert state.status == "published"
    assert "draft.expired" not in clock.actions(draft_id)
    assert clock.told("published", draft_id) == ["agent"]


# --- scheduled publishing ---------------------------------------------------------------

PUBLISHER = Actor(username="pub", roles=["publisher"])


async def approved_draft(clock: Clock) -> WorkflowHandle:
    handle = await clock.draft()
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    await handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
    )
    return handle


async def test_a_scheduled_reply_is_published_at_its_time_and_not_before(clock: Clock) -> None:
    handle = await approved_draft(clock)
    edit = EditRequest(actor=AGENT, body="A last-minute change", expected_version=1)
    at = await clock.env.get_current_time() + timedelta(hours=3)
    state = await handle.execute_update(
        ResponseApproval.publish, PublishRequest(actor=PUBLISHER, at=at)
    )
    assert state.status == "scheduled"
    with pytest.raises(WorkflowUpdateFailedError) as refused:  # the approved text is final
        await handle.execute_update(ResponseApproval.edit, edit)
    assert "scheduled cannot be edited" in str(refused.value.cause)
    await clock.advance(179)
    assert (await handle.query(ResponseApproval.current)).status == "scheduled"
    assert "draft.published" not in clock.actions(draft_id_of(handle))
    await clock.advance(2)
    assert (await handle.result()).status == "published"
    assert clock.actions(draft_id_of(handle))[-1] == "draft.published"


@pytest.mark.parametrize("change", ["disabled", "role taken away"])
async def test_a_scheduled_reply_does_not_leave_once_its_publisher_may_no_longer_publish(
    clock: Clock, change: str
) -> None:
    """The API checked the publisher's role when the time was asked for, hours before;
    before any channel is called the record is asked again: an account disabled since,
    or its publisher role taken away, and the reply does not leave (publish_failed, for
    another publisher to post or abandon)."""
    handle = await approved_draft(clock)
    at = await clock.env.get_current_time() + timedelta(hours=3)
    await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=PUBLISHER, at=at))
    with clock.database.write_session() as session:
        if change == "disabled":
            users.disable(session, "pub", actor="admin", actor_role="admin")
        else:
            users.set_roles(session, "pub", [Role.agent], actor="admin", actor_role="admin")
    await clock.advance(181)
    draft_id = draft_id_of(handle)
    failed = await clock.settled(
        handle,
        lambda: clock.row(DRAFTS, draft_id).status == "publish_failed",  # type: ignore[attr-defined]
    )
    assert failed, clock.actions(draft_id)
    actions = clock.actions(draft_id)
    assert "draft.published" not in actions and actions[-1] == "draft.publish_refused"
    error = clock.row(PUBLICATIONS, draft_id).error  # type: ignore[attr-defined]
    assert error.startswith("pub may no longer publish: ")


async def test_withdrawing_a_scheduled_reply_cancels_its_publication(clock: Clock) -> None:
    handle = await approved_draft(clock)
    at = await clock.env.get_current_time() + timedelta(hours=1)
    await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=PUBLISHER, at=at))
    await clock.advance(30)
    state = await handle.execute_update(ResponseApproval.withdraw, WithdrawRequest(actor=AGENT))
    assert state.status == "withdrawn"
    await clock.advance(60)
    assert (await handle.result()).status == "withdrawn"
    assert "draft.published" not in clock.actions(draft_id_of(handle))


async def test_a_time_asked_for_during_review_is_kept_until_the_approval(clock: Clock) -> None:
    handle = await clock.draft()
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    now_only = PublishRequest(actor=PUBLISHER)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(ResponseApproval.publish, now_only)
    assert "ask for a later time" in str(refused.value.cause)
    at = await clock.env.get_current_time() + timedelta(hours=2)
    state = await handle.execute_update(
        ResponseApproval.publish, PublishRequest(actor=PUBLISHER, at=at)
    )
    assert (state.status, state.scheduled_at) == ("in_review", at)
    await clock.advance(20)
    state = await handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
    )
    assert state.status == "scheduled"  # the approval came in time: on the timer
    await clock.advance(101)
    assert (await handle.result()).status == "published"
    assert "draft.publish_requested" in clock.actions(draft_id_of(handle))


async def test_a_late_approval_is_held_for_a_publisher_by_default(clock: Clock) -> None:
    handle = await clock.draft()
    draft_id = draft_id_of(handle)
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    at = await clock.env.get_current_time() + timedelta(minutes=10)
    await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=PUBLISHER, at=at))
    await clock.advance(20)
    state = await handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
    )
    assert (state.status, state.scheduled_at) == ("approved", None)
    assert "draft.published" not in clock.actions(draft_id)
    # The publishers hear that it is approved, and one publishes when they choose.
    state = await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=PUBLISHER))
    assert state.status == "published"


async def test_a_late_approval_is_published_at_once_when_the_rule_set_says_so(
    clock: Clock, database: Database
) -> None:
    rules = RuleSet(RuleSet.load().source.replace("late_approval: hold", "late_approval: publish"))
    assert rules.late_approval == "publish"
    queue = f"late-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(
            clock.env.client, queue, database, executor, rules, settings=SETTINGS
        ):
            clock.queue = queue
            handle = await clock.draft()
            await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
            at = await clock.env.get_current_time() + timedelta(minutes=10)
            await handle.execute_update(
                ResponseApproval.publish, PublishRequest(actor=PUBLISHER, at=at)
            )
            await clock.advance(20)
            state = await handle.execute_update(
                ResponseApproval.decide,
                DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
            )
            assert state.status == "published"
            assert clock.actions(draft_id_of(handle))[-1] == "draft.published"


def test_no_new_draft_once_the_post_deadline_has_passed(database: Database) -> None:
    levels = ServiceLevels.of(SETTINGS)
    with database.write() as connection:
        # Normal posts get a day.
        post_id = insert_post(connection, received_at=datetime.now(UTC) - timedelta(days=2))
        with pytest.raises(Conflict, match="deadline passed"):
            drafts.create(
                connection,
                post_id=post_id,
                author="agent",
                body=CLEAN,
                deadline=levels.post_deadline,
            )
