"""The audit log's schedules, each one long-running workflow on a durable timer (DESIGN's
invariant 6: not a cron job), started by the worker (once: their ids are fixed):

- `AuditCheckpoints` (`audit-checkpoints`) signs the log every few minutes while events
  arrive; each round's activity signs only when the log grew.
- `RetentionPurge` (`retention-purge`) erases, daily, what has outlived its retention
  period and no legal hold covers.

Each continues as new every so many rounds to keep its history short."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import ACTIVITY_RETRY, ACTIVITY_TIMEOUT
    from workflows.background_contracts import (
        CheckpointJob,
        CheckpointStart,
        PurgeJob,
        PurgeStart,
    )
    from workflows.signing import CheckpointActivities, PurgeActivities

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


@workflow.defn(name="RetentionPurge")
class RetentionPurge:
    @workflow.run
    async def run(self, start: PurgeStart) -> None:
        for _ in range(ROUNDS_PER_RUN):
            await workflow.execute_activity_method(
                PurgeActivities.purge_expired,
                PurgeJob(days=start.days),
                start_to_close_timeout=timedelta(minutes=30),
                retry_policy=ACTIVITY_RETRY,
            )
            await workflow.sleep(timedelta(seconds=start.every_seconds))
        workflow.continue_as_new(start)
