"""How `ResponseApproval` records its transitions in the database, and sends the
notifications they raise.

Transitions are recorded by local activities, which run inside the update's workflow task
(no round trip through the server's task queues). A local activity's result reaches the
history only when that task completes, so a task lost after the write committed (a worker
crash, a task the server dropped) replays without it. Each write therefore compares the
draft's transition count with the one the workflow knows (see `Recorded`): a stale write
changes nothing and the workflow adopts the database's standing, then re-checks the action
against it. Publishing, which calls the outside world, stays an ordinary activity.
Notifications that leave the app go out by their own activities, started and not awaited:
a slow webhook never holds up a review.

Kept apart from the workflow (`workflows.approval`), whose handlers say what each action
changes; this says how any of them is written. Workflow code: imports only the contracts
and temporalio (determinism).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from lifecycle.words import DraftStatus
    from workflows.activity_options import (
        ACTIVITY_RETRY,
        ACTIVITY_TIMEOUT,
        DELIVERY_RETRY,
        PUBLISH_HEARTBEAT,
    )
    from workflows.contracts import (
        APPLIED,
        RECORDED,
        DeliveryJob,
        DraftState,
        PublishJob,
        Recorded,
        Standing,
        StandingOf,
        Transition,
    )
    from workflows.outbound import NotifyActivities
    from workflows.publishing import PublishActivities
    from workflows.transitions import TransitionActivities

A = TypeVar("A")


class ApprovalRecorder:
    """The recording of `ResponseApproval`'s transitions, on its state; the workflow's
    `__init__` sets these attributes."""

    state: DraftState
    _lock: asyncio.Lock
    _outbound: list[asyncio.Future[Any]]
    _looking: bool  # told its record changed without it (`LOOK_AGAIN`)

    async def _look_again(self) -> None:
        """Take the record's standing afresh if it changed without this workflow (a
        customer's erasure withdrew the draft, `records.erasure`), as someone said. Only
        then: a standing read while nothing changed would drop what the state alone keeps
        (a publish time asked for during review)."""
        async with self._lock:
            self._looking = False
            standing = await workflow.execute_local_activity_method(
                TransitionActivities.read_standing,
                StandingOf(draft_id=self.state.draft_id),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            if standing.transitions != self.state.transitions:
                self._adopt(standing)

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
