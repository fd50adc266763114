"""The worker process and its activities, against a real Temporal dev server and database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from policies.engine import RuleSet
from records import audit
from records.audit_models import AuditEvent
from records.db import Database
from records.draft_models import Draft
from records.post_models import Post
from tests.helpers import free_ports, own_secrets
from workflows import devserver
from workflows.connection import connect
from workflows.contracts import APPLIED, RECORDED, STALE, Transition
from workflows.transitions import TransitionActivities


async def activity_pollers(client: Client, task_queue: str) -> int:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="default",
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    return len(response.pollers)


@pytest.mark.temporal
@pytest.mark.long(12)
async def test_the_worker_waits_for_temporal_then_serves_its_task_queue(tmp_path: Path) -> None:
    port, ui_port = free_ports(2)
    task_queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "COUNTERSIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'cs.db'}",
        "COUNTERSIGN_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "COUNTERSIGN_TASK_QUEUE": task_queue,
        **own_secrets(),
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "countersign.cli", "worker"], env=env, stdout=log, stderr=log
    )
    server: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.sleep(2)  # the worker is retrying: nothing listens yet
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        server = subprocess.Popen(
            devserver.command(
                db_file=tmp_path / "temporal.db", port=port, ui_port=ui_port, namespace="default"
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = await connect(f"127.0.0.1:{port}", "default", timeout=60)
        for _ in range(150):
            if await activity_pollers(client, task_queue):
                break
            await asyncio.sleep(0.2)
        assert await activity_pollers(client, task_queue) >= 1
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert "worker serving task queue" in (tmp_path / "worker.log").read_text()
    finally:
        for process in (worker, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        log.close()


def make_draft(database: Database) -> int:
    with database.write_session() as session:
        post = Post(
            channel="x",
            external_id="1",
            author="@c",
            text="hi",
            url="https://x.example/1",
            received_at=datetime(2026, 11, 1, tzinfo=UTC),
            respond_by=datetime(2026, 11, 1, tzinfo=UTC),
        )
        session.add(post)
        session.flush()
        assert post.id is not None
        draft = Draft(post_id=post.id, author="agent")
        session.add(draft)
        session.flush()
        assert draft.id is not None
        return draft.id


def submitted(draft_id: int, key: str = "1", *, expected: int = 0) -> Transition:
    return Transition(
        event_key=f"draft-{draft_id}/submit/{key}",
        expected=expected,
        draft_id=draft_id,
        status="in_review",
        stage="comms",
        actor="agent",
        role="agent",
        action="draft.submitted",
        version=1,
        content_sha256="ab" * 32,
        payload={"route": ["comms"]},
    )


def test_record_transition_commits_projection_and_event_once(database: Database) -> None:
    draft_id = make_draft(database)
    activities = TransitionActivities(database, RuleSet.load())
    env = ActivityEnvironment()
    first = env.run(activities.record_transition, submitted(draft_id))
    retried = env.run(activities.record_transition, submitted(draft_id))
    assert first.status == APPLIED and first.standing is None
    # The retry writes nothing and hands back the committed standing to adopt.
    assert retried.status == RECORDED and retried.standing is not None
    assert (retried.standing.status, retried.standing.stage) == ("in_review", "comms")
    assert retried.standing.transitions == 1
    assert retried.standing.recorded_keys == [f"draft-{draft_id}/submit/1"]
    with database.read_session() as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None
        assert (draft.status, draft.stage, draft.transitions) == ("in_review", "comms", 1)
        assert draft.stage_entered_at is not None
        events = session.exec(select(AuditEvent).where(AuditEvent.draft_id == draft_id)).all()
        assert [(e.action, e.version, e.content_sha256) for e in events] == [
            ("draft.submitted", 1, "ab" * 32)
        ]
        assert audit.verify(session).ok


def test_a_transition_from_an_out_of_date_view_writes_nothing(database: Database) -> None:
    """A workflow that lost its record of a committed transition expects an older count:
    its next write is refused as stale, and it learns the database's standing."""
    draft_id = make_draft(database)
    activities = TransitionActivities(database, RuleSet.load())
    env = ActivityEnvironment()
    assert env.run(activities.record_transition, submitted(draft_id, "a")).status == APPLIED
    withdrawn = Transition(
        event_key=f"draft-{draft_id}/withdraw/b",
        expected=0,  # does not know of the submission
        draft_id=draft_id,
        status="withdrawn",
        stage=None,
        actor="agent",
        role="agent",
        action="draft.withdrawn",
        version=1,
    )
    stale = env.run(activities.record_transition, withdrawn)
    assert stale.status == STALE and stale.standing is not None
    assert (stale.standing.status, stale.standing.transitions) == ("in_review", 1)
    assert stale.standing.recorded_keys == [f"draft-{draft_id}/submit/a"]
    with database.read_session() as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None and (draft.status, draft.transitions) == ("in_review", 1)
        actions = session.exec(
            select(AuditEvent.action).where(AuditEvent.draft_id == draft_id)
        ).all()
        assert actions == ["draft.submitted"]


def test_time_in_stage_restarts_only_when_the_stage_changes(database: Database) -> None:
    """The review queue orders by time in stage (`stage_entered_at`)."""
    draft_id = make_draft(database)
    activities = TransitionActivities(database, RuleSet.load())
    env = ActivityEnvironment()

    def move(count: int, status: str, stage: str | None) -> datetime | None:
        moved = Transition(
            event_key=f"draft-{draft_id}/move/{count}",
            expected=count,
            draft_id=draft_id,
            status=status,
            stage=stage,
            actor="comms",
            role="comms",
            action="draft.moved",
        )
        assert env.run(activities.record_transition, moved).status == APPLIED
        with database.read_session() as session:
            draft = session.get(Draft, draft_id)
            assert draft is not None and (draft.status, draft.stage) == (status, stage)
            return draft.stage_entered_at

    entered = move(0, "in_review", "comms")
    assert entered is not None
    assert move(1, "in_review", "comms") == entered  # same stage: the clock runs on
    later = move(2, "in_review", "legal")
    assert later is not None and later > entered
    assert move(3, "approved", None) is None
