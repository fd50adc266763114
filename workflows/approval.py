"""`ResponseApproval`: one workflow per draft (`draft-<id>`), the authority on its lifecycle.

Every action is an update. Its validator refuses what the state machine or separation of
duties forbids, so the caller gets a clear rejection before anything is written. Validators
of updates delivered together all see the same state, so each handler re-checks under a
lock before acting: of fifty concurrent approvals of one stage, one is recorded and the
rest fail with a Conflict.

Workflow code imports only the contracts and temporalio (determinism).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        CONFLICT,
        FORBIDDEN,
        INVALID,
        TERMINAL_STATES,
        CheckSubmission,
        DecisionRequest,
        DraftStart,
        DraftState,
        EditRequest,
        PublishJob,
        PublishRequest,
        RecordDecision,
        SaveVersion,
        SubmitOutcome,
        SubmitRequest,
        Transition,
        WithdrawRequest,
    )

ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACTIVITY_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=10), non_retryable_error_types=["NotFound"]
)
EDITABLE = ("draft", "changes_requested")
WITHDRAWABLE = ("draft", "in_review", "changes_requested", "approved", "scheduled")


async def _activity(name: str, arg: object, result_type: type | None = None) -> Any:
    """Activities retry until they succeed: each is idempotent by its event key."""
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=ACTIVITY_TIMEOUT,
        retry_policy=ACTIVITY_RETRY,
    )


def _refuse(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name="ResponseApproval")
class ResponseApproval:
    @workflow.init
    def __init__(self, start: DraftStart) -> None:
        self.state = DraftState(draft_id=start.draft_id, author=start.author, version=start.version)
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, start: DraftStart) -> DraftState:
        while self.state.status not in TERMINAL_STATES:
            await workflow.wait_condition(
                lambda: self.state.status in TERMINAL_STATES or self.state.status == "scheduled"
            )
            if self.state.status == "scheduled":
                await self._wait_then_publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    async def _wait_then_publish(self) -> None:
        """A durable timer to the scheduled time, cut short if the draft is withdrawn."""
        assert self.state.scheduled_at is not None
        delay = self.state.scheduled_at - workflow.now()
        if delay.total_seconds() > 0:
            try:
                await workflow.wait_condition(
                    lambda: self.state.status != "scheduled", timeout=delay
                )
                return  # withdrawn before its time
            except TimeoutError:
                pass
        async with self._lock:
            if self.state.status == "scheduled":
                key = f"draft-{self.state.draft_id}/publish/scheduled-v{self.state.version}"
                await self._publish(self.state.publisher or "", key)

    @workflow.query
    def current(self) -> DraftState:
        return self.state

    def _key(self, action: str) -> str:
        # Unique per update; stable across activity retries and workflow replays.
        info = workflow.current_update_info()
        assert info is not None, "called outside an update handler"
        return f"draft-{self.state.draft_id}/{action}/{info.id}"

    # --- submit ------------------------------------------------------------------------

    @workflow.update
    async def submit(self, request: SubmitRequest) -> SubmitOutcome:
        async with self._lock:
            self._check_submit(request)
            review_round = self.state.review_round + 1
            outcome: SubmitOutcome = await _activity(
                "submit_checks",
                CheckSubmission(
                    event_key=self._key("submit"),
                    draft_id=self.state.draft_id,
                    version=self.state.version,
                    actor=request.actor.username,
                    review_round=review_round,
                ),
                SubmitOutcome,
            )
            if not outcome.blocked:
                self.state.status, self.state.stage = "in_review", outcome.route[0]
                self.state.route, self.state.review_round = outcome.route, review_round
            return outcome

    @submit.validator
    def _validate_submit(self, request: SubmitRequest) -> None:
        self._check_submit(request)

    def _check_submit(self, request: SubmitRequest) -> None:
        if request.actor.username != self.state.author:
            raise _refuse(FORBIDDEN, "only the draft's author can submit it")
        if self.state.status not in EDITABLE:
            raise _refuse(CONFLICT, f"a draft that is {self.state.status} cannot be submitted")

    # --- edit --------------------------------------------------------------------------

    @workflow.update
    async def edit(self, request: EditRequest) -> int:
        async with self._lock:
            self._check_edit(request)
            version = self.state.version + 1
            await _activity(
                "save_version",
                SaveVersion(
                    event_key=self._key("edit"),
                    draft_id=self.state.draft_id,
                    version=version,
                    body=request.body,
                    actor=request.actor.username,
                ),
            )
            self.state.version = version
            return version

    @edit.validator
    def _validate_edit(self, request: EditRequest) -> None:
        self._check_edit(request)

    def _check_edit(self, request: EditRequest) -> None:
        if request.actor.username != self.state.author:
            raise _refuse(FORBIDDEN, "only the draft's author can edit it")
        if self.state.status not in EDITABLE:
            raise _refuse(CONFLICT, f"a draft that is {self.state.status} cannot be edited")
        if request.expected_version != self.state.version:
            raise _refuse(
                CONFLICT,
                f"version {request.expected_version} is stale; the current version is "
                f"{self.state.version}",
            )

    # --- decide ------------------------------------------------------------------------

    @workflow.update
    async def decide(self, request: DecisionRequest) -> DraftState:
        async with self._lock:
            self._check_decision(request)
            next_status, next_stage = self._after(request)
            await _activity(
                "record_decision",
                RecordDecision(
                    event_key=self._key("decide"),
                    draft_id=self.state.draft_id,
                    version=self.state.version,
                    review_round=self.state.review_round,
                    stage=request.stage,
                    decision=request.decision,
                    reviewer=request.actor.username,
                    comment=request.comment,
                    next_status=next_status,
                    next_stage=next_stage,
                ),
            )
            self.state.reviewers[request.actor.username] = request.stage
            self.state.status, self.state.stage = next_status, next_stage
            return self.state

    @decide.validator
    def _validate_decide(self, request: DecisionRequest) -> None:
        self._check_decision(request)

    def _check_decision(self, request: DecisionRequest) -> None:
        who = request.actor.username
        if request.stage not in request.actor.roles:
            raise _refuse(FORBIDDEN, f"deciding the {request.stage} stage needs that role")
        if who == self.state.author:
            raise _refuse(FORBIDDEN, "the author of a draft never decides on it")
        filled = self.state.reviewers.get(who)
        if filled is not None and filled != request.stage:
            raise _refuse(FORBIDDEN, f"{who} already decided the {filled} stage of this draft")
        if self.state.status != "in_review" or self.state.stage != request.stage:
            raise _refuse(
                CONFLICT,
                f"the draft is {self.state.status}"
                + (f" at stage {self.state.stage}" if self.state.stage else "")
                + f"; no {request.stage} decision is open",
            )
        if request.version != self.state.version:
            raise _refuse(
                CONFLICT,
                f"you reviewed version {request.version}; the current version is "
                f"{self.state.version}",
            )
        if request.decision not in ("approve", "reject", "request_changes"):
            raise _refuse(INVALID, f"unknown decision {request.decision!r}")
        if request.decision != "approve" and not (request.comment or "").strip():
            raise _refuse(INVALID, f"a comment is required to {request.decision.replace('_', ' ')}")

    def _after(self, request: DecisionRequest) -> tuple[str, str | None]:
        if request.decision == "reject":
            return "rejected", None
        if request.decision == "request_changes":
            return "changes_requested", None
        later = self.state.route[self.state.route.index(request.stage) + 1 :]
        return ("in_review", later[0]) if later else ("approved", None)

    # --- publish -----------------------------------------------------------------------

    @workflow.update
    async def publish(self, request: PublishRequest) -> DraftState:
        async with self._lock:
            self._check_publish(request)
            at = request.at
            if at is not None and at > workflow.now():
                await _activity(
                    "record_transition",
                    Transition(
                        event_key=self._key("schedule"),
                        draft_id=self.state.draft_id,
                        status="scheduled",
                        stage=None,
                        actor=request.actor.username,
                        role="publisher",
                        action="draft.scheduled",
                        version=self.state.version,
                        payload={"at": at.isoformat()},
                    ),
                )
                self.state.status, self.state.scheduled_at = "scheduled", at
                self.state.publisher = request.actor.username
            else:
                await self._publish(request.actor.username, self._key("publish"))
            return self.state

    @publish.validator
    def _validate_publish(self, request: PublishRequest) -> None:
        self._check_publish(request)

    def _check_publish(self, request: PublishRequest) -> None:
        if "publisher" not in request.actor.roles:
            raise _refuse(FORBIDDEN, "publishing needs the publisher role")
        if request.actor.username == self.state.author:
            raise _refuse(FORBIDDEN, "the author of a draft never publishes it")
        if self.state.status != "approved":
            raise _refuse(CONFLICT, f"a draft that is {self.state.status} cannot be published")

    async def _publish(self, publisher: str, event_key: str) -> None:
        await _activity(
            "publish_reply",
            PublishJob(
                event_key=event_key
                if "/" in event_key
                else f"draft-{self.state.draft_id}/publish/{event_key}",
                draft_id=self.state.draft_id,
                version=self.state.version,
                actor=publisher,
            ),
        )
        self.state.status = "published"

    # --- withdraw ----------------------------------------------------------------------

    @workflow.update
    async def withdraw(self, request: WithdrawRequest) -> DraftState:
        async with self._lock:
            self._check_withdraw(request)
            await _activity(
                "record_transition",
                Transition(
                    event_key=self._key("withdraw"),
                    draft_id=self.state.draft_id,
                    status="withdrawn",
                    stage=None,
                    actor=request.actor.username,
                    role="supervisor" if request.actor.username != self.state.author else "agent",
                    action="draft.withdrawn",
                    version=self.state.version,
                ),
            )
            self.state.status, self.state.stage = "withdrawn", None
            return self.state

    @withdraw.validator
    def _validate_withdraw(self, request: WithdrawRequest) -> None:
        self._check_withdraw(request)

    def _check_withdraw(self, request: WithdrawRequest) -> None:
        if request.actor.username != self.state.author and "supervisor" not in request.actor.roles:
            raise _refuse(FORBIDDEN, "only the author or a supervisor can withdraw a draft")
        if self.state.status not in WITHDRAWABLE:
            raise _refuse(CONFLICT, f"a draft that is {self.state.status} cannot be withdrawn")
