"""The worker process: connects to Temporal (with retries) and serves the task queue.

Workflow code runs in temporalio's sandbox wherever it is built with `sandboxed=True`: in
every test worker and the replay tests, where the sandbox refuses non-deterministic calls.
The service's own worker runs it unsandboxed by default (`COUNTERSIGN_WORKFLOW_SANDBOX`):
the sandbox re-imports the workflow module for every draft and wraps every activation,
which cost a third of the worker's CPU in `bench/lifecycle.py`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from connectors import egress
from connectors.base import Publisher
from connectors.outbox import OutboxPublisher
from countersign import tracing
from policies.engine import RuleSet
from policies.sla import ServiceLevels
from records import checkpoints, retention, vault
from records.db import Database
from records.notifications import outbound_channels
from records.settings import Settings
from workflows.alarms import AlarmActivities
from workflows.approval import ResponseApproval
from workflows.background_contracts import (
    CheckpointStart,
    PurgeStart,
    RouterStart,
    checkpoints_workflow_id,
    purge_workflow_id,
    router_workflow_id,
)
from workflows.checkpointing import AuditCheckpoints, RetentionPurge
from workflows.connection import Access, connect
from workflows.health import Health, serving
from workflows.interceptors import SealCheck
from workflows.log_context import LogContext
from workflows.mentions import PollActivities
from workflows.notify import NotificationDelivery
from workflows.outbound import NotifyActivities
from workflows.polling import MastodonPoller
from workflows.publishing import PublishActivities
from workflows.router import QueueRouter, RouterActivities
from workflows.signing import CheckpointActivities, PurgeActivities
from workflows.transitions import TransitionActivities

log = logging.getLogger("countersign.worker")

WORKFLOWS: Sequence[type] = (
    ResponseApproval,
    NotificationDelivery,
    MastodonPoller,
    AuditCheckpoints,
    RetentionPurge,
    QueueRouter,
)
ACTIVITY_THREADS = 16
# Enough workflow-task pollers that a task on this worker's sticky queue always finds one
# waiting: with the SDK's 5, a burst of updates left speculative tasks unclaimed until the
# server's 5 s sticky schedule-to-start timeout moved them to the normal queue.
WORKFLOW_TASK_POLLS = 20
# OpenTelemetry's context passes through the sandbox (`countersign.tracing`), as it does
# through temporalio's own OpenTelemetry plugin.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("opentelemetry")
)


def activities(
    database: Database,
    rules: RuleSet,
    publishers: dict[str, Publisher] | None = None,
    settings: Settings | None = None,
) -> list[Callable[..., Any]]:
    settings = settings or Settings()
    notify = NotifyActivities(
        database,
        webhook_url=settings.notify_webhook_url,
        webhook_secret=settings.notify_webhook_secret,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_from=settings.smtp_from,
    )
    outbound = outbound_channels(settings)
    levels = ServiceLevels.of(settings)
    transitions = TransitionActivities(database, rules, levels, outbound)
    alarms = AlarmActivities(database, levels, outbound)
    publishing = PublishActivities(
        database, publishers or {"outbox": OutboxPublisher(database)}, outbound
    )
    return [
        transitions.record_transition,
        transitions.submit_checks,
        transitions.save_version,
        transitions.read_standing,
        transitions.record_decision,
        alarms.record_alarm,
        publishing.publish_reply,
        notify.deliver_notification,
        PollActivities(database, transitions.rules).poll_mentions,
        CheckpointActivities(
            database, checkpoints.signer_of(settings), checkpoints.sinks_of(settings)
        ).sign_checkpoint,
        PurgeActivities(database).purge_expired,
        RouterActivities(database).route_queues,
    ]


def build_worker(
    client: Client,
    task_queue: str,
    database: Database,
    executor: ThreadPoolExecutor,
    rules: RuleSet | None = None,
    publishers: dict[str, Publisher] | None = None,
    *,
    sandboxed: bool = True,
    settings: Settings | None = None,
    release: Sequence[type] = WORKFLOWS,
    new_activities: Sequence[Callable[..., Any]] = (),
) -> Worker:
    """A worker of this release; `release` and `new_activities` stand for another one's
    workflow classes and its added activities (a test replacing a worker mid-draft)."""
    settings = settings or Settings()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(release),
        workflow_runner=SANDBOX if sandboxed else UnsandboxedWorkflowRunner(),
        # The rule set is compiled once; settings give the SLAs and notification channels.
        activities=[
            *activities(database, rules or RuleSet.load(), publishers, settings),
            *new_activities,
        ],
        activity_executor=executor,  # activities are synchronous database work
        max_concurrent_activities=ACTIVITY_THREADS,
        max_concurrent_workflow_task_polls=WORKFLOW_TASK_POLLS,
        # Every action must carry the API's seal (lifecycle.seals); every activity's log
        # lines say its draft and actor.
        interceptors=[SealCheck(settings.action_keys), LogContext()],
    )


async def run(settings: Settings, *, connect_timeout: float = 300.0) -> None:
    """Run until SIGINT/SIGTERM, then finish in-flight tasks and stop."""
    egress.configure(egress.EgressPolicy.of(settings))
    vault.configure(vault.Vault.of(settings))
    database = Database(settings.resolved_database_url)
    traces = tracing.start(settings, "worker")
    if traces is not None:
        traces.database(database)
    try:
        await _serve(settings, database, traces, connect_timeout)
    finally:
        database.dispose()
        if traces is not None:
            traces.shutdown()  # what is buffered goes to the collector before the end


async def _serve(
    settings: Settings, database: Database, traces: tracing.Tracing | None, connect_timeout: float
) -> None:
    client = await connect(
        settings.temporal_address,
        settings.temporal_namespace,
        timeout=connect_timeout,
        access=Access.of(settings),
        interceptors=[traces.temporal()] if traces is not None else [],
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(
        max_workers=ACTIVITY_THREADS, thread_name_prefix="activity"
    ) as executor:
        worker = build_worker(
            client,
            settings.task_queue,
            database,
            executor,
            RuleSet.load(settings.rules_file),
            sandboxed=settings.workflow_sandbox,
            settings=settings,
        )
        log.info(
            "worker serving task queue %r at %s", settings.task_queue, settings.temporal_address
        )
        health = Health()
        address = (settings.worker_health_host, settings.worker_health_port)
        async with worker, serving(*address, health):
            await start_checkpoints(client, settings)
            await start_purge(client, settings)
            await start_router(client, settings)
            health.ready = True
            await stop.wait()


async def start_checkpoints(client: Client, settings: Settings) -> None:
    """The audit log's signing schedule (`AuditCheckpoints`): started once, whichever worker
    comes up first; a running one is left as it is."""
    await client.start_workflow(
        AuditCheckpoints.run,
        CheckpointStart(every_seconds=settings.audit_checkpoint_minutes * 60),
        id=checkpoints_workflow_id(settings.workflow_id_prefix),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def start_router(client: Client, settings: Settings) -> None:
    """The queues' router (`QueueRouter`), started once like the checkpoints'."""
    await client.start_workflow(
        QueueRouter.run,
        RouterStart(every_seconds=settings.router_seconds),
        id=router_workflow_id(settings.workflow_id_prefix),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def start_purge(client: Client, settings: Settings) -> None:
    """The retention purge's schedule (`RetentionPurge`), started once like the checkpoints'."""
    await client.start_workflow(
        RetentionPurge.run,
        PurgeStart(
            every_seconds=settings.retention_purge_hours * 3600,
            days=retention.retention_days(settings.retention_days),
        ),
        id=purge_workflow_id(settings.workflow_id_prefix),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
