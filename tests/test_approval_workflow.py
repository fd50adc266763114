"""`ResponseApproval` against the real dev server and database: the state machine,
separation of duties, version-bound decisions, exactly one outcome per decision."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from policies.engine import RuleSet
from records import audit, draft_reads, drafts
from records.audit_models import AuditEvent
from records.db import Database
from records.draft_models import Decision, Draft
from records.post_models import Post
from tests.sealing import SealedHandle
from workflows.approval import ResponseApproval
from workflows.contracts import (
    APPLIED,
    Actor,
    DecisionRequest,
    DraftStart,
    EditRequest,
    RecordDecision,
    SubmitRequest,
    WithdrawRequest,
    workflow_id,
)
from workflows.transitions import TransitionActivities
from workflows.worker import ACTIVITY_THREADS, build_worker

pytestmark = pytest.mark.temporal

AGENT = Actor(username="agent", roles=["agent"])
COMMS = Actor(username="comms", roles=["comms"])
LEGAL = Actor(username="legal", roles=["legal"])
BOTH = Actor(username="both", roles=["comms", "legal"])
CLEAN = "Thanks for reaching out! We have sent you a direct message to sort this out."
FAULT = "We are sorry, this was our fault. We have sent you a direct message."


@pytest.fixture
async def worker_queue(temporal_env: WorkflowEnvironment, database: Database) -> AsyncIterator[str]:
    task_queue = f"approval-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, task_queue, database, executor):
            yield task_queue


async def start_draft(
    env: WorkflowEnvironment, database: Database, task_queue: str, body: str
) -> WorkflowHandle[ResponseApproval, object]:
    with database.write_session() as session:
        post = Post(
            channel="x",
            external_id=uuid.uuid4().hex,
            author="@customer",
            text="My card was charged twice!",
            url="https://x.example/1",
            received_at=datetime(2026, 11, 1, tzinfo=UTC),
            respond_by=datetime(2026, 11, 1, tzinfo=UTC),
        )
        session.add(post)
        session.flush()
        assert post.id is not None
        draft_id = drafts.create(
            session.connection(), post_id=post.id, author="agent", body=body
        ).draft_id
    handle = await env.client.start_workflow(
        ResponseApproval.run,
        DraftStart(draft_id=draft_id, author="agent"),
        id=f"{workflow_id(draft_id)}-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
    )
    return SealedHandle(handle)  # type: ignore[return-value]


async def refused(call: object) -> tuple[str, str]:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call  # type: ignore[misc]
    cause = info.value.cause
    return getattr(cause, "type", ""), str(cause)


def draft_row(database: Database, draft_id: int) -> Draft:
    with database.read_session() as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None
        return draft


async def test_a_reply_that_admits_fault_needs_comms_then_legal(
    temporal_env: WorkflowEnvironment, database: Database, worker_queue: str
) -> None:
    handle = await start_draft(temporal_env, database, worker_queue, FAULT)
    outcome = await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    assert not outcome.blocked and outcome.findings == []  # the findings come when blocked
    state = await handle.query(ResponseApproval.current)
    assert (state.status, state.stage, state.route) == ("in_review", "comms", ["comms", "legal"])

    decision = DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1)
    state = await handle.execute_update(ResponseApproval.decide, decision)
    assert (state.status, state.stage) == ("in_review", "legal")
    decision = DecisionRequest(actor=LEGAL, stage="legal", decision="approve", version=1)
    state = await handle.execute_update(ResponseApproval.decide, decision)
    assert state.status == "approved"

    row = draft_row(database, (await handle.query(ResponseApproval.current)).draft_id)
    assert (row.status, row.stage, row.route) == ("approved", None, ["comms", "legal"])
    with database.read_session() as session:
        decisions = session.exec(select(Decision).where(Decision.draft_id == row.id)).all()
        assert [(d.stage, d.reviewer, d.version) for d in decisions] == [
            ("comms", "comms", 1),
            ("legal", "legal", 1),
        ]
        actions = session.exec(
            select(AuditEvent.action).where(AuditEvent.draft_id == row.id).order_by(AuditEvent.seq)
        ).all()
        assert actions == ["draft.created", "draft.submitted", "draft.approve", "draft.approve"]
        assert audit.verify(session).ok


async def test_separation_of_duties_and_stale_versions_are_refused(
    temporal_env: WorkflowEnvironment, database: Database, worker_queue: str
) -> None:
    handle = await start_draft(temporal_env, database, worker_queue, FAULT)
    submit = SubmitRequest(actor=COMMS)
    assert (await refused(handle.execute_update(ResponseApproval.submit, submit)))[0] == "Forbidden"
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))

    def decide(actor: Actor, stage: str = "comms", version: int = 1, **kw: str) -> object:
        request = DecisionRequest(
            actor=actor,
            stage=stage,
            decision=kw.get("decision", "approve"),
            version=version,
            comment=kw.get("comment"),
        )
        return handle.execute_update(ResponseApproval.decide, request)

    author_as_reviewer = Actor(username="agent", roles=["agent", "comms"])
    kind, text = await refused(decide(author_as_reviewer))
    assert kind == "Forbidden" and "author" in text
    assert (await refused(decide(LEGAL)))[0] == "Forbidden"  # not a comms reviewer
    assert (await refused(decide(COMMS, version=2)))[0] == "Conflict"  # not the current version
    assert (await refused(decide(BOTH, stage="legal")))[0] == "Conflict"  # legal is not open yet
    kind, text = await refused(decide(COMMS, decision="reject"))
    assert kind == "Invalid" and "comment" in text

    await decide(BOTH)  # fills comms
    kind, text = await refused(decide(BOTH, stage="legal"))
    assert kind == "Forbidden" and "already decided the comms stage" in text
    assert (await handle.query(ResponseApproval.current)).stage == "legal"


async def test_an_edit_after_changes_requested_needs_comms_again(
    temporal_env: WorkflowEnvironment, database: Database, worker_queue: str
) -> None:
    handle = await start_draft(temporal_env, database, worker_queue, FAULT)
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    comms_ok = DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1)
    await handle.execute_update(ResponseApproval.decide, comms_ok)
    changes = DecisionRequest(
        actor=LEGAL,
        stage="legal",
        decision="request_changes",
        version=1,
        comment="Do not admit fault.",
    )
    state = await handle.execute_update(ResponseApproval.decide, changes)
    assert state.status == "changes_requested"

    stale = EditRequest(actor=AGENT, body=CLEAN, expected_version=0)
    assert (await refused(handle.execute_update(ResponseApproval.edit, stale)))[0] == "Conflict"
    edit = EditRequest(actor=AGENT, body=CLEAN, expected_version=1)
    assert await handle.execute_update(ResponseApproval.edit, edit) == 2
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    state = await handle.query(ResponseApproval.current)
    assert state.route == ["comms"]  # the new text no longer admits fault
    assert (state.status, state.stage, state.version) == ("in_review", "comms", 2)
    old = DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1)
    assert (await refused(handle.execute_update(ResponseApproval.decide, old)))[0] == "Conflict"
    new = DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=2)
    assert (await handle.execute_update(ResponseApproval.decide, new)).status == "approved"
    row = draft_row(database, state.draft_id)
    assert (row.version, row.status) == (2, "approved")


async def test_fifty_concurrent_approvals_record_one_decision(
    temporal_env: WorkflowEnvironment, database: Database, worker_queue: str
) -> None:
    handle = await start_draft(temporal_env, database, worker_queue, CLEAN)
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    reviewers = [Actor(username=f"comms{n}", roles=["comms"]) for n in range(50)]
    results = await asyncio.gather(
        *(
            handle.execute_update(
                ResponseApproval.decide,
                DecisionRequest(actor=r, stage="comms", decision="approve", version=1),
            )
            for r in reviewers
        ),
        return_exceptions=True,
    )
    succeeded = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
    assert len(succeeded) == 1 and len(failed) == 49
    assert all(getattr(f.cause, "type", "") == "Conflict" for f in failed)
    with database.read_session() as session:
        draft_id = (await handle.query(ResponseApproval.current)).draft_id
        decisions = session.exec(select(Decision).where(Decision.draft_id == draft_id)).all()
        assert len(decisions) == 1
        # The one recorded is the one whose caller was told it succeeded.
        winner = reviewers[results.index(succeeded[0])].username
        assert decisions[0].reviewer == winner
        assert list((await handle.query(ResponseApproval.current)).reviewers) == [winner]


@pytest.mark.parametrize("first", ["the lost update", "another reviewer"])
async def test_a_transition_whose_workflow_task_was_lost_is_adopted_not_repeated(
    temporal_env: WorkflowEnvironment, database: Database, worker_queue: str, first: str
) -> None:
    """A local activity commits, then its workflow task is lost (the worker died before
    completing it): the history never hears of the write. Simulated here by running the
    activity against the database directly under the update id the lost task had. Whichever
    update arrives next, the workflow learns the truth from the database: the lost update,
    delivered again, answers from the record; another reviewer's approval is refused."""
    handle = await start_draft(temporal_env, database, worker_queue, CLEAN)
    await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    state = await handle.query(ResponseApproval.current)
    lost_id = f"lost-{uuid.uuid4().hex[:8]}"
    lost = RecordDecision(
        event_key=f"draft-{state.draft_id}/decide/{lost_id}",
        expected=state.transitions,
        draft_id=state.draft_id,
        version=1,
        review_round=state.review_round,
        stage="comms",
        decision="approve",
        reviewer="comms",
        role="comms",
        comment=None,
        next_status="approved",
        next_stage=None,
    )
    written = ActivityEnvironment().run(
        TransitionActivities(database, RuleSet.load()).record_decision, lost
    )
    assert written.status == APPLIED
    redelivered = handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
        id=lost_id,
    )
    other = handle.execute_update(
        ResponseApproval.decide,
        DecisionRequest(actor=BOTH, stage="comms", decision="approve", version=1),
    )
    # Bounded: a write that ignored the count would hit the decisions' unique key and retry.
    if first == "the lost update":
        assert (await asyncio.wait_for(redelivered, 60)).status == "approved"
        kind, message = await asyncio.wait_for(refused(other), 60)
    else:
        kind, message = await asyncio.wait_for(refused(other), 60)
        assert (await asyncio.wait_for(redelivered, 60)).status == "approved"
    assert kind == "Conflict" and "approved" in message
    state = await handle.query(ResponseApproval.current)
    assert (state.status, state.transitions, state.reviewers) == ("approved", 2, {"comms": "comms"})
    with database.read_session() as session:
        decisions = session.exec(select(Decision).where(Decision.draft_id == state.draft_id)).all()
        assert [(d.reviewer, d.decision) for d in decisions] == [("comms", "approve")]
        assert audit.verify(session).ok
    assert draft_row(database, state.draft_id).transitions == 2


async def test_a_blocked_submission_shows_findings_and_stays_editable(
    temporal_env: WorkflowEnvironment, database: Database, worker_queue: str
) -> None:
    handle = await start_draft(temporal_env, database, worker_queue, "That was a damn shame.")
    outcome = await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
    assert (outcome.blocked, outcome.version, outcome.findings) == (True, 1, [])  # no words
    state = await handle.query(ResponseApproval.current)
    with database.engine.connect() as connection:  # what the checks found: the record's
        found = draft_reads.findings(connection, state.draft_id, outcome.version)
    assert [f["category"] for f in found] == ["profanity"]
    assert state.status == "draft"
    edit = EditRequest(actor=AGENT, body=CLEAN, expected_version=1)
    assert await handle.execute_update(ResponseApproval.edit, edit) == 2
    withdraw = WithdrawRequest(actor=COMMS)
    assert (await refused(handle.execute_update(ResponseApproval.withdraw, withdraw)))[0] == (
        "Forbidden"
    )
    state = await handle.execute_update(ResponseApproval.withdraw, WithdrawRequest(actor=AGENT))
    assert state.status == "withdrawn"
    assert (await handle.result()).status == "withdrawn"  # the workflow completes
