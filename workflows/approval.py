"""`ResponseApproval`: one workflow per draft (`draft-<id>`), the authority on its lifecycle.

Every action is an update, sealed by the API for the person it authenticated: the
worker's interceptor (`workflows.interceptors`) refuses any other before a validator runs,
and the validator checks that the seal names this draft's author. The validator then asks
the rulebook (`lifecycle.rulebook`) whether this person may take this action in this state,
so the caller gets a clear rejection before anything is written. Validators of updates
delivered together all see the same state, so each handler asks again under a lock before
acting: of fifty concurrent approvals of one stage, one is recorded and the rest fail with
a Conflict.

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
    from lifecycle import rulebook
    from lifecycle.rulebook import Person, Refusal
    from lifecycle.words import TERMINAL, Action, AlarmKind, DraftStatus, ErrorKind, Role
    from workflows.alarms import AlarmActivities
    from workflows.contracts import (
        APPLIED,
        RECORDED,
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
    from workflows.outbound import NotifyActivities
    from workflows.publishing import PublishActivities
    from workflows.transitions import TransitionActivities

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
A = TypeVar("A")
# Any of the requests an update carries (each has the acting person and the API's seal).
Request = SubmitRequest | EditRequest | DecisionRequest | PublishRequest | WithdrawRequest


def _refuse(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def _enforce(refusal: Refusal | None) -> None:
    """Raise the rulebook's refusal, if any, as the update's failure."""
    if refusal is not None:
        raise _refuse(refusal.kind, refusal.reason)


def _person(actor: Actor) -> Person:
    return Person.of(actor.username, actor.roles)


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
        while self.state.status not in TERMINAL:
            if self.state.status == DraftStatus.scheduled:
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
        alarm, leaving = self._next_alarm(), (DraftStatus.scheduled, *TERMINAL)
        moved_on = lambda: self._next_alarm() != alarm or self.state.status in leaving  # noqa: E731
        if alarm is None:
            await workflow.wait_condition(moved_on)
            return
        delay = (alarm.at - workflow.now()).total_seconds()
        if delay > 0:
            try:
                await workflow.wait_condition(moved_on, timeout=delay)
                return
            except TimeoutError:
                pass
        await self._ring(alarm)

    def _next_alarm(self) -> rulebook.Alarm | None:
        """The earliest alarm still to go off, if any (the rulebook decides which)."""
        clock = self.state.clock
        return rulebook.next_alarm(
            self.state,
            stage_seconds=clock.seconds if clock else {},
            remind_fraction=clock.remind_fraction if clock else 0,
            fired={*self.state.alarms, *self.state.recorded_keys},
        )

    async def _ring(self, alarm: rulebook.Alarm) -> None:
        """Record an alarm (reminder, escalation, expiry) unless the draft moved on meanwhile."""
        kind, key = alarm.kind, alarm.key

        def check() -> None:
            if self._next_alarm() != alarm:
                raise _refuse(ErrorKind.conflict, "the draft moved on before the alarm")

        async with self._lock:
            try:
                result, _ = await self._transition(
                    key,
                    check,
                    AlarmActivities.record_alarm,
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
                if kind == AlarmKind.escalate:
                    self.state.sla_breached = True
                elif kind == AlarmKind.expire:
                    self.state.status, self.state.stage = DraftStatus.expired, None

    def _send(self, deliveries: list[int]) -> None:
        """Start each outbound notification's activity; not awaited (see `run`)."""
        for delivery_id in deliveries:
            self._outbound.append(
                workflow.start_activity_method(
                    NotifyActivities.deliver_notification,
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
                    lambda: self.state.status != DraftStatus.scheduled, timeout=delay
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
        if self.state.status != DraftStatus.scheduled:
            raise _refuse(
                ErrorKind.conflict, f"a draft that is {self.state.status} is not published"
            )

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
        activity: Callable[[Any, Any], Recorded],
        arg: Callable[..., A],
        *,
        local: bool = True,
    ) -> tuple[Recorded, A]:
        """Check the action, then record it by `activity` (a method of the activity
        classes); the answer and the activity input it used.

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
            result: Recorded = await (
                workflow.execute_local_activity_method(
                    activity,
                    sent,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
                if local
                else workflow.execute_activity_method(
                    activity,
                    sent,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                    heartbeat_timeout=PUBLISH_HEARTBEAT,
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
            TransitionActivities.record_transition,
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

    # --- the rulebook, asked of this draft as the workflow knows it ------------------------

    def _draft(self) -> rulebook.Draft:
        state = self.state
        return rulebook.Draft(
            author=state.author,
            status=state.status,
            stage=state.stage,
            version=state.version,
            route=tuple(state.route),
            reviewers=state.reviewers,
            sla_breached=state.sla_breached,
            backup_roles=state.clock.backup_roles if state.clock else {},
        )

    def _vouched(self, request: Request) -> None:
        """The API sealed this action for this draft's author. (The worker's interceptor
        has already checked the seal itself: `workflows.interceptors`.)"""
        seal = request.seal
        if seal is None or seal.author != self.state.author:
            raise _refuse(ErrorKind.forbidden, "the action was not sealed for this draft")

    # --- submit ------------------------------------------------------------------------

    @workflow.update(name=Action.submit)
    async def submit(self, request: SubmitRequest) -> SubmitOutcome:
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
            return result.outcome

    @submit.validator
    def _validate_submit(self, request: SubmitRequest) -> None:
        self._vouched(request)
        if not self._recorded(Action.submit):
            self._check_submit(request)

    def _check_submit(self, request: SubmitRequest) -> None:
        person = _person(request.actor)
        _enforce(rulebook.may_submit(self._draft(), person, version=request.version))

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

    def _check_edit(self, request: EditRequest) -> None:
        expected = request.expected_version
        _enforce(
            rulebook.may_edit(self._draft(), _person(request.actor), expected_version=expected)
        )

    # --- decide ------------------------------------------------------------------------

    @workflow.update(name=Action.decide)
    async def decide(self, request: DecisionRequest) -> DraftState:
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
                    role=rulebook.deciding_role(draft, _person(request.actor), request.stage),
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
            return self.state

    @decide.validator
    def _validate_decide(self, request: DecisionRequest) -> None:
        self._vouched(request)
        if not self._recorded(Action.decide):
            self._check_decision(request)

    def _check_decision(self, request: DecisionRequest) -> None:
        refusal = rulebook.may_decide(
            self._draft(),
            _person(request.actor),
            stage=request.stage,
            decision=request.decision,
            version=request.version,
            comment=request.comment,
        )
        _enforce(refusal)

    # --- publish -----------------------------------------------------------------------

    @workflow.update(name=Action.publish)
    async def publish(self, request: PublishRequest) -> DraftState:
        async with self._lock:
            at = request.at
            check = lambda: self._check_publish(request)  # noqa: E731
            if at is None or at <= workflow.now():
                await self._publish(request.actor.username, self._key(Action.publish), check)
                return self.state
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
                return self.state
            await self._schedule(request.actor.username, at, check)
            return self.state

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
                raise _refuse(
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

    def _check_publish(self, request: PublishRequest) -> None:
        later = request.at is not None and request.at > workflow.now()
        refusal = rulebook.may_publish(
            self._draft(), _person(request.actor), later=later, version=request.version
        )
        _enforce(refusal)

    async def _publish(self, publisher: str, key: str, check: Callable[[], None]) -> None:
        """Post the reply through an ordinary activity (it calls the outside world), which
        checks the record again before any channel is called."""
        result, _ = await self._transition(
            key,
            check,
            PublishActivities.publish_reply,
            lambda **recording: PublishJob(
                **recording,
                version=self.state.version,
                actor=publisher,
            ),
            local=False,
        )
        if result.status == APPLIED:
            self.state.stage = None
            failed = DraftStatus.publish_failed if result.failure else DraftStatus.published
            self.state.status = failed

    # --- withdraw ----------------------------------------------------------------------

    @workflow.update(name=Action.withdraw)
    async def withdraw(self, request: WithdrawRequest) -> DraftState:
        async with self._lock:
            person = _person(request.actor)
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
            return self.state

    @withdraw.validator
    def _validate_withdraw(self, request: WithdrawRequest) -> None:
        self._vouched(request)
        if not self._recorded(Action.withdraw):
            self._check_withdraw(request)

    def _check_withdraw(self, request: WithdrawRequest) -> None:
        _enforce(rulebook.may_withdraw(self._draft(), _person(request.actor)))
