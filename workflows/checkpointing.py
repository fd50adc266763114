"""`AuditCheckpoints`: one long-running workflow (`audit-checkpoints`) that signs the audit
log every few minutes while events arrive (DESIGN's invariant 6: a durable timer, not a
cron job). Each round's activity signs only when the log grew; the run continues as new
every so many rounds to keep its history short. The worker starts it (once: the id is
fixed) when it starts."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.approval import ACTIVITY_RETRY, ACTIVITY_TIMEOUT
    from workflows.contracts import CheckpointJob, CheckpointStart
    from workflows.signing import CheckpointActivities

ROUNDS_PER_RUN = 500


@workflow.defn(name="AuditCheckpoints")
class AuditCheckpoints:
    @workflow.run
    async def run(self, start: CheckpointStart) -> None:
        for _ in range(ROUNDS_PER_RUN):
            await workflow.execute_activity_method(
                CheckpointActivities.sign_checkpoint,
                CheckpointJob(),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            await workflow.sleep(timedelta(seconds=start.every_seconds))
        workflow.continue_as_new(start)
