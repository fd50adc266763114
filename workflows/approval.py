"""`ResponseApproval`: one workflow per draft (`draft-<id>`), the authority on its lifecycle.

Every action is an update. Its validator refuses what the state machine or separation of
duties forbids, so the caller gets a clear rejection before anything is written. Validators
of updates delivered together all see the same state, so each handler re-checks under a
lock before acting: of fifty concurrent approvals of one stage, one is recorded and the
rest fail with a Conflict.

Transitions are recorded by local activities, which run inside the update's workflow task
(no round trip through the server's task queues). A local activity's result reaches the
history only when that task completes, so a task lost after the write committed (a worker
crash, a task the server dropped) replays without it. Each write therefore compares the
draft's transition count with the one the workflow knows (see `Recorded`): a stale write
changes nothing and the workflow adopts the database's standing, then re-checks the action
against it. Publishing, which calls the outside world, stays an ordinary activity.

Every time limit is a durable timer here (see `_watch`): a stage's reminder and escalation
(its SLA), the post's deadline, which expires a draft still open, and a scheduled publish.
Notifications that leave the app go out by their own activities, started and not awaited:
a slow webhook never holds up a review.

Workflow code imports only the contracts and temporalio (determinism).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        APPLIED,
        CONFLICT,
        EDITABLE,
        ESCALATE,
        EXPIRE,
        FORBIDDEN,
        INVALID,
        PUBLISHABLE,
        RECORDED,
        REMIND,
        TERMINAL_STATES,
        WITHDRAWABLE,
        Actor,
        Alarm,
        CheckSubmission,
        DecisionRequest,
        DeliveryJob,
        DraftStart,
        DraftState,
        EditRequest,
        PublishJob,
        PublishRequest,
        RecordDecision,
        Recorded,
        SaveVersion,
        Standing,
        SubmitOutcome,
        SubmitRequest,
        Transition,
        WithdrawRequest,
    )

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# The publish activity heartbeats while the platform answers: a dead worker's attempt is
# retried after this, not after ACTIVITY_TIMEOUT.
PUBLISH_HEARTBEAT = timedelta(seconds=5)
ACTIVITY_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=10), non_retryable_error_types=["NotFound"]
)
# Outbound notifications: retried with backoff for about a day, then marked failed.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(hours=1),
    maximum_attempts=30,
)
EXPIRABLE = ("draft", "in_review", "changes_requested", "approved")
A = TypeVar("A")


def _refuse(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name="ResponseApproval")
class ResponseApproval:
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

    @workflow.run
    async def run(self, start: DraftStart) -> DraftState:
        while self.state.status not in TERMINAL_STATES:
            if self.state.status == "scheduled":
                await self._wait_then_publish()
            else:
                await self._watch()
        await workflow.wait_condition(workflow.all_handlers_finished)
        # Outbound notifications end (sent, or failed after their retries) before the run.
        await asyncio.gather(*self._outbound, return_exceptions=True)
        return self.state

    # --- time limits -------------------------------------------------------------------

    async def _watch(self) -> None:
        """Wait for the next alarm, or for the state to change what it is.

        One timer per alarm: while the next alarm stays the same (say, the post's deadline
        through every edit of a draft), its timer keeps running."""
        alarm, leaving = self._next_alarm(), ("scheduled", *TERMINAL_STATES)
        moved_on = lambda: self._next_alarm() != alarm or self.state.status in leaving  # noqa: E731
        if alarm is None:
            await workflow.wait_condition(moved_on)
            return
        delay = (alarm[0] - workflow.now()).total_seconds()
        if delay > 0:
            try:
                await workflow.wait_condition(moved_on, timeout=delay)
                return
            except TimeoutError:
                pass
        await self._ring(alarm)

    def _next_alarm(self) -> tuple[datetime, str, str] | None:
        """(when, kind, event key) of the earliest alarm still to go off, if any."""
        state, alarms = self.state, []
        clock, stage, opened = state.clock, state.stage, state.stage_opened_at
        if state.status == "in_review" and clock and stage in clock.seconds and opened:
            seconds = clock.seconds[stage]
            key = f"draft-{state.draft_id}/sla/{stage}/r{state.review_round}"
            if clock.remind_fraction > 0 and not self._fired(
                f"{key}/{REMIND}", f"{key}/{ESCALATE}"
            ):
                at = opened + timedelta(seconds=seconds * clock.remind_fraction)
                alarms.append((at, REMIND, f"{key}/{REMIND}"))
            elif not self._fired(f"{key}/{ESCALATE}"):
                alarms.append((opened + timedelta(seconds=seconds), ESCALATE, f"{key}/{ESCALATE}"))
        if state.expires_at is not None and state.status in EXPIRABLE:
            alarms.append((state.expires_at, EXPIRE, f"draft-{state.draft_id}/{EXPIRE}"))
        return min(alarms) if alarms else None

    def _fired(self, *keys: str) -> bool:
        return any(k in self.state.alarms or k in self.state.recorded_keys for k in keys)

    async def _ring(self, alarm: tuple[datetime, str, str]) -> None:
        """Record an alarm (reminder, escalation, expiry) unless the draft moved on meanwhile."""
        _, kind, key = alarm

        def check() -> None:
            if self._next_alarm() != alarm:
                raise _refuse(CONFLICT, "the draft moved on before the alarm")

        async with self._lock:
            try:
                result, _ = await self._transition(
                    key,
                    check,
                    "record_alarm",
                    lambda **recording: Alarm(
                        **recording,
                        kind=kind,
                        stage=self.state.stage,
                        review_round=self.state.review_round,
                        version=self.state.version,
                    ),
                )
            except ApplicationError:
                return  # an action got in first; the next alarm is worked out afresh
            self.state.alarms.append(key)
            if result.status == APPLIED:
                if kind == ESCALATE:
                    self.state.sla_breached = True
                elif kind == EXPIRE:
                    self.state.status, self.state.stage = "expired", None

    def _send(self, deliveries: list[int]) -> None:
        """Start each outbound notification's activity; not awaited (see `run`)."""
        for delivery_id in deliveries:
            self._outbound.append(
                workflow.start_activity(
                    "deliver_notification",
                    DeliveryJob(delivery_id=delivery_id),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=DELIVERY_RETRY,
                )
            )

    def _open_stage(self, stage: str | None) -> None:
        """A stage opened (its clock starts now), or none is open."""
        self.state.stage_opened_at = workflow.now() if stage else None
        self.state.sla_breached = False

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
            key = f"draft-{self.state.draft_id}/publish/scheduled-v{self.state.version}"
            # Refused only when the draft is no longer scheduled (withdrawn meanwhile).
            with contextlib.suppress(ApplicationError):
                await self._publish(self.state.publisher or "", key, self._check_scheduled)

    def _check_scheduled(self) -> None:
        if self.state.status != "scheduled":
            raise _refuse(CONFLICT, f"a draft that is {self.state.status} is not published")

    @workflow.query
    def current(self) -> DraftState:
        return self.state

    # --- recording transitions ---------------------------------------------------------

    def _key(self, action: str) -> str:
        # Unique per update; stable across activity retries and workflow replays.
        info = workflow.current_update_info()
        assert info is not None, "called outside an update handler"
        return f"draft-{self.state.draft_id}/{action}/{info.id}"

    def _recorded(self, action: str) -> bool:
        """This update's transition is already in the database (learnt by adopting its
        standing): its checks are passed, and its answer comes from the record."""
        return self._key(action) in self.state.recorded_keys

    async def _transition(
        self,
        key: str,
        check: Callable[[], None],
        activity: str,
        arg: Callable[..., A],
        *,
        local: bool = True,
    ) -> tuple[Recorded, A]:
        """Check the action, then record it; the answer and the activity input it used.

        `arg` builds the input from the `Recording` fields this fills in. On `applied` the
        caller applies the change to the state. On `recorded` and `stale` the state is the
        database's standing; a stale write wrote nothing, so the action is checked again
        against the truth (usually it is now refused) and retried. `local=False` runs an
        ordinary activity that heartbeats (publishing, which calls the outside world).
        """
        while True:
            known = key in self.state.recorded_keys
            if not known:
                check()
            # A transition known to be recorded is not written again: the activity is asked
            # only for its answer (no expected count).
            sent = arg(
                event_key=key,
                expected=None if known else self.state.transitions,
                draft_id=self.state.draft_id,
            )
            options = {
                "result_type": Recorded,
                "start_to_close_timeout": ACTIVITY_TIMEOUT,
                "retry_policy": ACTIVITY_RETRY,
            }
            result: Recorded = await (
                workflow.execute_local_activity(activity, sent, **options)  # type: ignore[call-overload]
                if local
                else workflow.execute_activity(  # type: ignore[call-overload]
                    activity, sent, heartbeat_timeout=PUBLISH_HEARTBEAT, **options
                )
            )
            if result.status == APPLIED:
                self.state.transitions += 1
                self._send(result.deliveries)
                return result, sent
            assert result.standing is not None
            self._adopt(result.standing)
            if result.status == RECORDED:
                self._send(result.deliveries)
                return result, sent

    def _adopt(self, standing: Standing) -> None:
        """Take the database's standing: every one of its fields is also the state's."""
        known = {f.name: getattr(standing, f.name) for f in dataclasses.fields(standing)}
        self.state = dataclasses.replace(self.state, **known)

    async def _move(
        self,
        action: str,
        check: Callable[[], None],
        *,
        status: str,
        actor: str,
        role: str,
        stage: str | None = None,
        event: str | None = None,
        payload: dict[str, str] | None = None,
    ) -> Recorded:
        """Record a move to `status` at `stage` (none open: scheduled, withdrawn) and its
        audit event (`draft.<status>` unless `event` names another)."""
        key = self._key(action)
        result, _ = await self._transition(
            key,
            check,
            "record_transition",
            lambda **recording: Transition(
                **recording,
                status=status,
                stage=stage,
                actor=actor,
                role=role,
                action=event or f"draft.{status}",
                version=self.state.version,
                payload=payload or {},
            ),
        )
        return result

    # --- submit ------------------------------------------------------------------------

    @workflow.update
    async def submit(self, request: SubmitRequest) -> SubmitOutcome:
        async with self._lock:
            key = self._key("submit")
            result, sent = await self._transition(
                key,
                lambda: self._check_submit(request),
                "submit_checks",
                lambda **recording: CheckSubmission(
                    **recording,
                    version=self.state.version,
                    actor=request.actor.username,
                    review_round=self.state.review_round + 1,
                ),
            )
            assert result.outcome is not None
            if result.status == APPLIED and not result.outcome.blocked:
                self.state.status, self.state.stage = "in_review", result.outcome.route[0]
                self.state.route, self.state.review_round = result.outcome.route, sent.review_round
                self.state.clock = result.outcome.clock
                self.state.late_approval = result.outcome.late_approval
                self._open_stage(self.state.stage)
            elif result.status == RECORDED and result.outcome.clock is not None:
                self.state.clock = result.outcome.clock
            return result.outcome

    @submit.validator
    def _validate_submit(self, request: SubmitRequest) -> None:
        if not self._recorded("submit"):
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
            key = self._key("edit")
            result, sent = await self._transition(
                key,
                lambda: self._check_edit(request),
                "save_version",
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
        if not self._recorded("edit"):
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
            key = self._key("decide")

            def record(**recording: Any) -> RecordDecision:
                next_status, next_stage = self._after(request)
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
                    comment=request.comment,
                    next_status=next_status,
                    next_stage=next_stage,
                )

            result, sent = await self._transition(
                key, lambda: self._check_decision(request), "record_decision", record
            )
            if result.status == APPLIED:
                self.state.reviewers[request.actor.username] = request.stage
                self.state.status, self.state.stage = sent.next_status, sent.next_stage
                self._open_stage(sent.next_stage)
                if sent.next_status == "approved":
                    await self._after_approval()
                elif sent.next_status != "in_review":
                    self.state.scheduled_at = self.state.publisher = None  # asked of old text
            return self.state

    @decide.validator
    def _validate_decide(self, request: DecisionRequest) -> None:
        if not self._recorded("decide"):
            self._check_decision(request)

    def _check_decision(self, request: DecisionRequest) -> None:
        who = request.actor.username
        if request.stage not in request.actor.roles and not self._backs_up(request):
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

    def _backs_up(self, request: DecisionRequest) -> bool:
        """The stage is overdue and the caller holds its backup role."""
        clock, state = self.state.clock, self.state
        backup = clock.backup_roles.get(request.stage) if clock else None
        return (
            backup is not None
            and backup in request.actor.roles
            and state.sla_breached
            and state.stage == request.stage
        )

    def _after(self, request: DecisionRequest) -> tuple[str, str | None]:
        if request.decision == "reject":
            return "rejected", None
        if request.decision == "request_changes":
            return "changes_requested", None
        route = self.state.route
        later = route[route.index(request.stage) + 1 :] if request.stage in route else []
        return ("in_review", later[0]) if later else ("approved", None)

    # --- publish -----------------------------------------------------------------------

    @workflow.update
    async def publish(self, request: PublishRequest) -> DraftState:
        async with self._lock:
            at = request.at
            check = lambda: self._check_publish(request)  # noqa: E731
            if at is None or at <= workflow.now():
                await self._publish(request.actor.username, self._key("publish"), check)
                return self.state
            if self.state.status == "in_review":
                # A time asked for before the approval: kept until the approval comes.
                result = await self._move(
                    "request-publish",
                    check,
                    status=self.state.status,
                    stage=self.state.stage,
                    actor=request.actor.username,
                    role="publisher",
                    event="draft.publish_requested",
                    payload={"at": at.isoformat()},
                )
                if result.status == APPLIED:
                    self.state.scheduled_at, self.state.publisher = at, request.actor.username
                return self.state
            await self._schedule(request.actor.username, at, check)
            return self.state

    async def _schedule(self, publisher: str, at: datetime, check: Callable[[], None]) -> None:
        result = await self._move(
            "schedule",
            check,
            status="scheduled",
            actor=publisher,
            role="publisher",
            payload={"at": at.isoformat()},
        )
        if result.status == APPLIED:
            self.state.status, self.state.scheduled_at = "scheduled", at
            self.state.publisher = publisher

    async def _after_approval(self) -> None:
        """A publish time was asked for during the review: schedule it, or, if it has
        passed, do what the rule set says (publish at once, or hold for a publisher)."""
        at, publisher = self.state.scheduled_at, self.state.publisher
        if at is None or publisher is None:
            return

        def approved() -> None:
            if self.state.status != "approved":
                raise _refuse(CONFLICT, f"a draft that is {self.state.status} is not published")

        if at > workflow.now():
            await self._schedule(publisher, at, approved)
        elif self.state.late_approval == "publish":
            await self._publish(publisher, self._key("publish-late"), approved)
        else:
            self.state.scheduled_at = self.state.publisher = None  # held for a publisher

    @publish.validator
    def _validate_publish(self, request: PublishRequest) -> None:
        if not any(self._recorded(a) for a in ("publish", "schedule", "request-publish")):
            self._check_publish(request)

    def _check_publish(self, request: PublishRequest) -> None:
        if "publisher" not in request.actor.roles:
            raise _refuse(FORBIDDEN, "publishing needs the publisher role")
        if request.actor.username == self.state.author:
            raise _refuse(FORBIDDEN, "the author of a draft never publishes it")
        later = request.at is not None and request.at > workflow.now()
        if self.state.status == "approved" or (self.state.status in PUBLISHABLE and not later):
            return
        if self.state.status == "in_review" and later:
            return  # a time asked for before the approval (see `publish`)
        raise _refuse(
            CONFLICT,
            f"a draft that is {self.state.status} cannot be published"
            + (" now; ask for a later time" if self.state.status == "in_review" else ""),
        )

    async def _publish(self, publisher: str, key: str, check: Callable[[], None]) -> None:
        """Post the reply through an ordinary activity (it calls the outside world)."""
        result, _ = await self._transition(
            key,
            check,
            "publish_reply",
            lambda **recording: PublishJob(
                **recording,
                version=self.state.version,
                actor=publisher,
            ),
            local=False,
        )
        if result.status == APPLIED:
            self.state.stage = None
            self.state.status = "publish_failed" if result.failure else "published"

    # --- withdraw ----------------------------------------------------------------------

    @workflow.update
    async def withdraw(self, request: WithdrawRequest) -> DraftState:
        async with self._lock:
            result = await self._move(
                "withdraw",
                lambda: self._check_withdraw(request),
                status="withdrawn",
                actor=request.actor.username,
                role=self._withdrawer_role(request.actor),
            )
            if result.status == APPLIED:
                self.state.status, self.state.stage = "withdrawn", None
                self._open_stage(None)
            return self.state

    @withdraw.validator
    def _validate_withdraw(self, request: WithdrawRequest) -> None:
        if not self._recorded("withdraw"):
            self._check_withdraw(request)

    def _withdrawer_role(self, actor: Actor) -> str:
        if actor.username == self.state.author:
            return "agent"
        return "supervisor" if "supervisor" in actor.roles else "publisher"

    def _check_withdraw(self, request: WithdrawRequest) -> None:
        actor = request.actor
        # A publisher abandons a publication the channel refused.
        abandons = self.state.status == "publish_failed" and "publisher" in actor.roles
        if actor.username != self.state.author and "supervisor" not in actor.roles and not abandons:
            raise _refuse(
                FORBIDDEN,
                "only the author or a supervisor can withdraw a draft "
                "(and a publisher one whose publication failed)",
            )
        if self.state.status not in WITHDRAWABLE:
            raise _refuse(CONFLICT, f"a draft that is {self.state.status} cannot be withdrawn")
