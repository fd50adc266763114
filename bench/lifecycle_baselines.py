"""The baselines `bench/lifecycle.py` measures Countersign against, in the same run on the
same Temporal server: bare workflows with the same four updates and one activity, and
(`--floor`) the same recording each review step in a no-op local activity, alone or driven
over HTTP through `bench/thin_api.py`. Apart from the script so that it holds only what it
runs and reports; the workflow and activity names are the ones `bench/thin_api.py` calls.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench import http1
from workflows.worker import ACTIVITY_THREADS, WORKFLOW_TASK_POLLS

# What each side times, in order: a draft's creation and its four updates.
ACTIONS = ("create", "submit", "comms", "legal", "publish")


@activity.defn(name="bare_publish")
async def bare_publish(draft: int) -> str:
    return f"posted-{draft}"


@workflow.defn(name="BareApproval", sandboxed=False)
class BareApproval:
    def __init__(self) -> None:
        self.step = 0

    @workflow.run
    async def run(self, draft: int) -> int:
        await workflow.wait_condition(lambda: self.step == 4 and workflow.all_handlers_finished())
        return self.step

    @workflow.update
    async def advance(self, step: int) -> int:
        if step == 4:
            await workflow.execute_activity(
                bare_publish, step, start_to_close_timeout=timedelta(seconds=30)
            )
        else:
            await self._record(step)
        self.step = step
        return step

    async def _record(self, step: int) -> None:
        """Bare: nothing (see `BareRecordedApproval`)."""

    @advance.validator
    def _check(self, step: int) -> None:
        if step != self.step + 1:
            raise ValueError("out of order")


@activity.defn(name="bare_record")
def bare_record(step: int) -> int:
    return step


@workflow.defn(name="BareRecordedApproval", sandboxed=False)
class BareRecordedApproval(BareApproval):
    """`--floor`: bare, plus what Countersign's design costs in Temporal alone: each of the
    first three updates records itself in a local activity that does nothing."""

    @workflow.run
    async def run(self, draft: int) -> int:
        return await super().run(draft)

    async def _record(self, step: int) -> None:
        await workflow.execute_local_activity(
            bare_record, step, start_to_close_timeout=timedelta(seconds=30)
        )


async def run_bare(
    env: WorkflowEnvironment, count: int, clients: int, shape: type[BareApproval] = BareApproval
) -> tuple[float, dict]:
    """(seconds taken, timings per action)."""
    queue = f"bare-{uuid.uuid4().hex[:6]}"
    timings: dict[str, list[float]] = defaultdict(list)
    gate = asyncio.Semaphore(clients)

    async def one(n: int) -> None:
        async with gate:
            started = time.perf_counter()
            handle = await env.client.start_workflow(
                shape.run, n, id=f"bare-{queue}-{n}", task_queue=queue
            )
            timings["create"].append(time.perf_counter() - started)
            for step, name in enumerate(ACTIONS[1:], 1):
                started = time.perf_counter()
                await handle.execute_update(shape.advance, step)
                timings[name].append(time.perf_counter() - started)

    async with bare_worker(env, queue, shape):
        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        elapsed = time.perf_counter() - started
    return elapsed, timings


@asynccontextmanager
async def bare_worker(
    env: WorkflowEnvironment, queue: str, shape: type[BareApproval]
) -> AsyncIterator[None]:
    """A worker for the bare workflows in this process, set up as Countersign's is."""
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[shape],
            activities=[bare_publish, bare_record],
            activity_executor=executor,  # as Countersign's worker (for bare_record)
            max_concurrent_workflow_task_polls=WORKFLOW_TASK_POLLS,  # as Countersign's
        ):
            yield


async def run_thin(
    env: WorkflowEnvironment, port: int, queue: str, numbers: list[int], clients: int
) -> tuple[float, dict]:
    """`--floor`: the bare workflow with its no-op local activities, driven over HTTP through
    `bench/thin_api.py` (FastAPI and a Temporal client, nothing else). The worker runs here,
    as for the bare sides."""
    timings: dict[str, list[float]] = defaultdict(list)
    gate = asyncio.Semaphore(clients)
    pool = [http1.Connection("127.0.0.1", port) for _ in range(clients)]

    async def timed(http: http1.Connection, name: str, path: str, body: dict) -> None:
        started = time.perf_counter()
        status, answer = await http.request("POST", path, json_body=body)
        timings[name].append(time.perf_counter() - started)
        assert status in (200, 201), (name, status, answer)

    async def one(n: int) -> None:
        async with gate:
            http = pool.pop()
            await timed(http, "create", "/bare", {"n": n})
            for step, name in enumerate(ACTIONS[1:], 1):
                await timed(http, name, f"/bare/{n}/advance", {"step": step})
            pool.append(http)

    async with bare_worker(env, queue, BareRecordedApproval):
        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in numbers))
        elapsed = time.perf_counter() - started
    for http in pool:
        await http.close()
    return elapsed, timings
