"""`ResponseApproval`'s time limits, each a durable timer: a stage's reminder and escalation
(its SLA), the post's deadline, which expires a draft still open, and a scheduled publish.
The rulebook says which alarm is next (`lifecycle.rulebook.next_alarm`); this waits for it
and records it, unless the draft moved on first.

Kept apart from the workflow (`workflows.approval`), whose handlers act on requests; this
acts on time. Workflow code: imports only the contracts and temporalio (determinism).
"""

from __future__ import annotations

import contextlib

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.approval_checks import refuse
from workflows.approval_recording import ApprovalRecorder

with workflow.unsafe.imports_passed_through():
    from lifecycle import rulebook
    from lifecycle.words import TERMINAL, AlarmKind, DraftStatus, ErrorKind
    from workflows.alarms import AlarmActivities
    from workflows.contracts import APPLIED, Alarm


class ApprovalClock(ApprovalRecorder):
    """The timers of `ResponseApproval`, on its state."""

    async def _watch(self) -> None:
        """Wait for the next alarm, or for the state to change what it is.

        One timer per alarm: while the next alarm stays the same (say, the post's deadline
        through every edit of a draft), its timer keeps running."""
        alarm, leaving = self._next_alarm(), (DraftStatus.scheduled, *TERMINAL)
        moved_on = lambda: (  # noqa: E731
            self._next_alarm() != alarm or self.state.status in leaving or self._looking
        )
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
                raise refuse(ErrorKind.conflict, "the draft moved on before the alarm")

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
                    lambda: self.state.status != DraftStatus.scheduled or self._looking,
                    timeout=delay,
                )
                return  # withdrawn before its time, or to look at its record again
            except TimeoutError:
                pass
        async with self._lock:
            key = f"draft-{self.state.draft_id}/publish/scheduled-v{self.state.version}"
            # Refused only when the draft is no longer scheduled (withdrawn meanwhile).
            with contextlib.suppress(ApplicationError):
                await self._publish(self.state.publisher or "", key, self._check_scheduled)

    def _check_scheduled(self) -> None:
        if self.state.status != DraftStatus.scheduled:
            raise refuse(
                ErrorKind.conflict, f"a draft that is {self.state.status} is not published"
            )
