"""`ResponseApproval`: one workflow per draft (`draft-<id>`), the authority on its lifecycle.

Every action is an update, sealed by the API for the person it authenticated: the
worker's interceptor (`workflows.interceptors`) refuses any other before a validator runs,
and the validator checks that the seal names this draft's author. The validator then asks
the rulebook (`lifecycle.rulebook`) whether this person may take this action in this state,
so the caller gets a clear rejection before anything is written. Validators of updates
delivered together all see the same state, so each handler asks again under a lock before
acting: of fifty concurrent approvals of one stage, one is recorded and the rest fail with
a Conflict.

This module holds the workflow's run and its handlers: what each action changes. Its
parts are modules of their own:
- `workflows.approval_checks`: the seal and the rulebook's checks each action asks;
- `workflows.approval_recording`: how a transition is recorded (a local activity, each
  write compared with the transition count the workflow knows; publishing an ordinary
  activity) and the notifications it raises sent;
- `workflows.approval_clock`: every time limit, a durable timer (a stage's reminder and
  escalation, the post's deadline, a scheduled publish).

Workflow code imports only the contracts and temporalio (determinism). Its parts are
workflow code too, imported with it (into the sandbox, where it runs there); what they
import is passed through, as here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import workflow

from workflows.approval_checks import ApprovalChecks, person_of, refuse
from workflows.approval_clock import ApprovalClock

with workflow.unsafe.imports_passed_through():
    from lifecycle import rulebook
    from lifecycle.words import TERMINAL, Action, DraftStatus, ErrorKind, Role
    from workflows.contracts import (
        APPLIED,
        LOOK_AGAIN,
        RECORDED,
        Acted,
        CheckSubmission,
        DecisionRequest,
        DraftStart,
        DraftState,
        EditRequest,
        PublishRequest,
        RecordDecision,
        SaveVersion,
        SubmitRequest,
        Submitted,
        WithdrawRequest,
    )
    from workflows.transitions import TransitionActivities


@workflow.defn(name="ResponseApproval")
class ResponseApproval(ApprovalClock, ApprovalChecks):
    @workflow.init
    def __init__(self, start: DraftStart) -> None:
        self.state = DraftState(
            draft_id=start.draft_id,
            author=start.author,
            version=start.version,
            expires_at=start.expires_at,
        )
        self._lock = asyncio.Lock()
        self._outbound: list[asyncio.Future[Any]] = []
        self._looking = False

    @workflow.run
    async def run(self, start: DraftStart) -> Acted:
        while self.state.status not in TERMINAL:
            if self._looking:
                await self._look_again()
            elif self.state.status == DraftStatus.scheduled:
                await self._wait_then_publish()
            else:
                await self._watch()
        await workflow.wait_condition(workflow.all_handlers_finished)
        # Outbound notifications end (sent, or failed after their retries) before the run.
        await asyncio.gather(*self._outbound, return_exceptions=True)
        return self._acted()

    @workflow.signal(name=LOOK_AGAIN)
    def look_again(self) -> None:
        """The record changed without this workflow: read it again (`LOOK_AGAIN`). Patched:
        a history recorded before the signal had a handler replays as it ran (the signal
        was then kept unhandled)."""
        if workflow.patched(LOOK_AGAIN):
            self._looking = True

    @workflow.query
    def current(self) -> DraftState:
        return self.state

    def _acted(self) -> Acted:
        """An update's answer, and the run's: where the draft is now (the whole state is
        the `current` query's)."""
        state = self.state
        return Acted(
            status=state.status, stage=state.stage, version=state.version,
            scheduled_at=state.scheduled_at,
        )  # fmt: skip

    # --- submit ------------------------------------------------------------------------

    @workflow.update(name=Action.submit)
    async def submit(self, request: SubmitRequest) -> Submitted:
        async with self._lock:
            key = self._key(Action.submit)
            result, sent = await self._transition(
                key,
                lambda: self._check_submit(request),
                TransitionActivities.submit_checks,
                lambda **recording: CheckSubmission(
                    **recording,
                    version=self.state.version,
                    actor=request.actor.username,
                    review_round=self.state.review_round + 1,
                ),
            )
            assert result.outcome is not None
            if result.status == APPLIED and not result.outcome.blocked:
                self.state.status, self.state.stage = DraftStatus.in_review, result.outcome.route[0]
                self.state.route, self.state.review_round = result.outcome.route, sent.review_round
                self.state.clock = result.outcome.clock
                self.state.late_approval = result.outcome.late_approval
                self._open_stage(self.state.stage)
            elif result.status == RECORDED and result.outcome.clock is not None:
                self.state.clock = result.outcome.clock
            outcome = result.outcome
            return Submitted(
                blocked=outcome.blocked, ruleset_version=outcome.ruleset_version,
                version=sent.version,  # whose findings the API reads from the record
                findings=outcome.findings,  # empty, but in histories recorded before
            )  # fmt: skip

    @submit.validator
    def _validate_submit(self, request: SubmitRequest) -> None:
        self._vouched(request)
        if not self._recorded(Action.submit):
            self._check_submit(request)

    # --- edit --------------------------------------------------------------------------

    @workflow.update(name=Action.edit)
    async def edit(self, request: EditRequest) -> int:
        async with self._lock:
            key = self._key(Action.edit)
            result, sent = await self._transition(
                key,
                lambda: self._check_edit(request),
                TransitionActivities.save_version,
                lambda **recording: SaveVersion(
                    **recording,
                    version=self.state.version + 1,
                    body=request.body,
                    actor=request.actor.username,
                ),
            )
            if result.status == APPLIED:
                self.state.version = sent.version
            return self.state.version

    @edit.validator
    def _validate_edit(self, request: EditRequest) -> None:
        self._vouched(request)
        if not self._recorded(Action.edit):
            self._check_edit(request)

    # --- decide ------------------------------------------------------------------------

    @workflow.update(name=Action.decide)
    async def decide(self, request: DecisionRequest) -> Acted:
        async with self._lock:
            key = self._key(Action.decide)

            def record(**recording: Any) -> RecordDecision:
                draft = self._draft()
                next_status, next_stage = rulebook.after_decision(
                    draft.route, request.stage, request.decision
                )
                clock = self.state.clock
                return RecordDecision(
                    next_stage_seconds=clock.seconds.get(next_stage)
                    if clock and next_stage
                    else None,
                    **recording,
                    version=self.state.version,
                    review_round=self.state.review_round,
                    stage=request.stage,
                    decision=request.decision,
                    reviewer=request.actor.username,
                    role=rulebook.deciding_role(draft, person_of(request.actor), request.stage),
                    comment=request.comment,
                    next_status=next_status,
                    next_stage=next_stage,
                )

            result, sent = await self._transition(
                key,
                lambda: self._check_decision(request),
                TransitionActivities.record_decision,
                record,
            )
            if result.status == APPLIED:
                self.state.reviewers[request.actor.username] = request.stage
                self.state.status, self.state.stage = sent.next_status, sent.next_stage
                self._open_stage(sent.next_stage)
                if sent.next_status == DraftStatus.approved:
                    await self._after_approval()
                elif sent.next_status != DraftStatus.in_review:
                    self.state.scheduled_at = self.state.publisher = None  # asked of old text
            return self._acted()

    @decide.validator
    def _validate_decide(self, request: DecisionRequest) -> None:
        self._vouched(request)
        if not self._recorded(Action.decide):
            self._check_decision(request)

    # --- publish -----------------------------------------------------------------------

    @workflow.update(name=Action.publish)
    async def publish(self, request: PublishRequest) -> Acted:
        async with self._lock:
            at = request.at
            check = lambda: self._check_publish(request)  # noqa: E731
            if at is None or at <= workflow.now():
                await self._publish(request.actor.username, self._key(Action.publish), check)
                return self._acted()
            if self.state.status == DraftStatus.in_review:
                # A time asked for before the approval: kept until the approval comes.
                result = await self._move(
                    "request-publish",
                    check,
                    status=self.state.status,
                    stage=self.state.stage,
                    actor=request.actor.username,
                    role=Role.publisher,
                    event="draft.publish_requested",
                    payload={"at": at.isoformat()},
                )
                if result.status == APPLIED:
                    self.state.scheduled_at, self.state.publisher = at, request.actor.username
                return self._acted()
            await self._schedule(request.actor.username, at, check)
            return self._acted()

    async def _schedule(self, publisher: str, at: datetime, check: Callable[[], None]) -> None:
        result = await self._move(
            "schedule",
            check,
            status=DraftStatus.scheduled,
            actor=publisher,
            role=Role.publisher,
            payload={"at": at.isoformat()},
        )
        if result.status == APPLIED:
            self.state.status, self.state.scheduled_at = DraftStatus.scheduled, at
            self.state.publisher = publisher

    async def _after_approval(self) -> None:
        """A publish time was asked for during the review: schedule it, or, if it has
        passed, do what the rule set says (publish at once, or hold for a publisher)."""
        at, publisher = self.state.scheduled_at, self.state.publisher
        if at is None or publisher is None:
            return

        def approved() -> None:
            if self.state.status != DraftStatus.approved:
                raise refuse(
                    ErrorKind.conflict, f"a draft that is {self.state.status} is not published"
                )

        if at > workflow.now():
            await self._schedule(publisher, at, approved)
        elif self.state.late_approval == "publish":
            await self._publish(publisher, self._key("publish-late"), approved)
        else:
            self.state.scheduled_at = self.state.publisher = None  # held for a publisher

    @publish.validator
    def _validate_publish(self, request: PublishRequest) -> None:
        self._vouched(request)
        if not any(self._recorded(a) for a in (Action.publish, "schedule", "request-publish")):
            self._check_publish(request)

    # --- withdraw ----------------------------------------------------------------------

    @workflow.update(name=Action.withdraw)
    async def withdraw(self, request: WithdrawRequest) -> Acted:
        async with self._lock:
            person = person_of(request.actor)
            result = await self._move(
                Action.withdraw,
                lambda: self._check_withdraw(request),
                status=DraftStatus.withdrawn,
                actor=request.actor.username,
                role=rulebook.withdrawing_role(self._draft(), person),
            )
            if result.status == APPLIED:
                self.state.status, self.state.stage = DraftStatus.withdrawn, None
                self._open_stage(None)
            return self._acted()

    @withdraw.validator
    def _validate_withdraw(self, request: WithdrawRequest) -> None:
        self._vouched(request)
        if not self._recorded(Action.withdraw):
            self._check_withdraw(request)
