"""The API's side of the approval workflow: send an action as an update, map the answer.

An action is sent as a plain update to the draft's workflow. Should that workflow not be
found (the API died between committing the draft and starting it, or the draft is closed),
the action is sent again with update-with-start: a never-started workflow starts, and a
finished one answers that the draft is closed. The common case costs the server one call.
Updates go by name (`lifecycle.words.Action`), so the API depends on the contracts only,
not on workflow code. Every action is sealed for the person the API authenticated
(`lifecycle.seals`): the worker refuses any update without the API's seal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from lifecycle import seals
from lifecycle.words import ErrorKind
from records.errors import (
    Conflict,
    CountersignError,
    Forbidden,
    Invalid,
    NotFound,
    Unavailable,
    UpstreamRefused,
)
from workflows.background_contracts import (
    NUDGE,
    PollStart,
    poller_id,
    router_workflow_id,
)
from workflows.connection import TemporalGateway
from workflows.contracts import (
    LOOK_AGAIN,
    DeliveryJob,
    DraftStart,
    delivery_workflow_id,
    workflow_id,
)

log = logging.getLogger("countersign.api")
WORKFLOW = "ResponseApproval"
DELIVERY_WORKFLOW = "NotificationDelivery"
POLLER_WORKFLOW = "MastodonPoller"
T = TypeVar("T")
P = ParamSpec("P")
ERRORS: dict[str, type[CountersignError]] = {
    ErrorKind.forbidden: Forbidden,
    ErrorKind.conflict: Conflict,
    ErrorKind.invalid: Invalid,
    ErrorKind.not_found: NotFound,
}


def update_id(
    principal: str, idempotency_key: str | None, scope: tuple[object, ...], *derived: object
) -> str:
    """Fixed per request and per caller: from the caller, the action and draft (`scope`)
    and their Idempotency-Key, else from those and the request itself, so a retried request
    is the same update and Temporal applies it once, while two people asking the same thing
    are two updates (each is told the truth about their own). A key used again for another
    action or draft is another update: it never replays an answer of another kind."""
    material = (
        repr(("key", principal, *scope, idempotency_key))
        if idempotency_key
        else repr(("derived", principal, *scope, *derived))
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _retrying(
    method: Callable[Concatenate[Lifecycle, P], Awaitable[T]],
) -> Callable[Concatenate[Lifecycle, P], Awaitable[T]]:
    """Try again while Temporal is unavailable (restarting), for up to `retry_seconds`.
    A repeated attempt is the same action: the workflow id and update id are fixed."""

    @functools.wraps(method)
    async def retried(self: Lifecycle, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + self.retry_seconds, 0.2
        while True:
            try:
                return await method(self, *args, **kwargs)
            except Unavailable:
                if loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    return retried


NUDGE_SECONDS = 1.0


class Lifecycle:
    def __init__(
        self,
        gateway: TemporalGateway,
        task_queue: str,
        id_prefix: str = "",
        *,
        retry_seconds: float = 30.0,
        action_key: str,
    ) -> None:
        self.gateway = gateway
        self.task_queue = task_queue
        self.id_prefix = id_prefix
        self.retry_seconds = retry_seconds
        self.action_key = action_key

    async def nudge_router(self) -> None:
        """Tell the queues' router something changed (a post arrived, an agent is
        available), so it runs a round now. Best effort, and never waiting to connect
        (the readiness check and the first draft connect the API): the router's timer runs
        a round anyway. (A nudge is a signal anyone who reaches Temporal could send: it only
        runs a round.)"""
        client = self.gateway.connected
        if client is None:
            return
        with contextlib.suppress(Exception):
            handle = client.get_workflow_handle(router_workflow_id(self.id_prefix))
            await asyncio.wait_for(handle.signal(NUDGE), NUDGE_SECONDS)

    async def look_again(self, draft_ids: Iterable[int]) -> None:
        """Tell each draft's workflow its record changed without it (a customer's erasure
        withdrew it), so it takes the record's standing now. Best effort, as `nudge_router`:
        a workflow not told learns it at its next step, whose write finds the draft moved
        on (one with no step left to take stays open in Temporal, its record withdrawn)."""
        draft_ids = list(draft_ids)
        if not draft_ids:
            return
        try:
            client = await self.gateway.client(timeout=NUDGE_SECONDS)
        except Exception as exc:  # best effort, said in the log
            log.warning("drafts %s's workflows were not told: %s", draft_ids, type(exc).__name__)
            return
        for draft_id in draft_ids:
            try:
                handle = client.get_workflow_handle(workflow_id(draft_id, self.id_prefix))
                await asyncio.wait_for(handle.signal(LOOK_AGAIN), NUDGE_SECONDS)
            except Exception as exc:  # best effort, said in the log
                log.warning("draft %s's workflow was not told: %s", draft_id, type(exc).__name__)

    def _start_options(self, draft_id: int) -> dict[str, Any]:
        return {
            "id": workflow_id(draft_id, self.id_prefix),
            "task_queue": self.task_queue,
            "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
            # A finished draft's workflow is never started afresh.
            "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        }

    @_retrying
    async def start(self, draft_id: int, author: str, expires_at: datetime | None = None) -> None:
        client = await self._client()
        try:
            await client.start_workflow(
                WORKFLOW,
                DraftStart(draft_id=draft_id, author=author, expires_at=expires_at),
                **self._start_options(draft_id),
            )
        except WorkflowAlreadyStartedError as exc:
            raise Conflict("a finished workflow already has this draft's id") from exc
        except RPCError as exc:
            raise _rpc_error(exc) from exc

    @_retrying
    async def update(
        self,
        draft_id: int,
        author: str,
        name: str,
        arg: Any,
        *,
        update_id: str,
        result_type: type[T],
        expires_at: datetime | None = None,
    ) -> T:
        client = await self._client()
        workflow = workflow_id(draft_id, self.id_prefix)
        handle = client.get_workflow_handle(workflow)
        # Sealed for this workflow, action, update and the draft's author as recorded.
        sealed = seals.seal(
            self.action_key,
            workflow_id=workflow,
            update=name,
            update_id=update_id,
            author=author,
            request=arg,
            now_ms=time.time_ns() // 1_000_000,
        )
        arg = dataclasses.replace(arg, seal=sealed)
        start: WithStartWorkflowOperation[Any, Any] | None = None
        try:
            try:
                done: T = await handle.execute_update(
                    name, arg, id=update_id, result_type=result_type
                )
                return done
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
            start = WithStartWorkflowOperation(
                WORKFLOW,
                DraftStart(draft_id=draft_id, author=author, expires_at=expires_at),
                **self._start_options(draft_id),
            )
            result: T = await client.execute_update_with_start_workflow(
                name, arg, start_workflow_operation=start, id=update_id, result_type=result_type
            )
            return result
        except WorkflowAlreadyStartedError as exc:
            # The draft's workflow has finished (published, rejected, withdrawn, expired).
            if start is not None:  # its start carries the same refusal: taken, not left
                with contextlib.suppress(WorkflowAlreadyStartedError):  # to be logged as lost
                    await start.workflow_handle()
            raise Conflict("this draft is closed; it takes no further action") from exc
        except WorkflowUpdateFailedError as exc:
            cause: BaseException | None = exc.cause
            if isinstance(cause, ActivityError):  # an activity's own refusal
                cause = cause.cause
            if isinstance(cause, ApplicationError) and cause.type in ERRORS:
                raise ERRORS[cause.type](cause.message) from exc
            raise
        except RPCError as exc:
            raise _rpc_error(exc) from exc

    @_retrying
    async def deliver(self, deliveries: list[int]) -> None:
        """Start the sending of notifications raised outside a draft's workflow (one
        `NotificationDelivery` workflow each; asking twice starts it once)."""
        client = await self._client()
        for delivery_id in deliveries:
            try:
                await client.start_workflow(
                    DELIVERY_WORKFLOW,
                    DeliveryJob(delivery_id=delivery_id),
                    id=delivery_workflow_id(delivery_id, self.id_prefix),
                    task_queue=self.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
            except WorkflowAlreadyStartedError:
                pass  # started by an earlier call, and finished since
            except RPCError as exc:
                raise _rpc_error(exc) from exc

    @_retrying
    async def start_poller(self, account_id: int, interval_seconds: float) -> None:
        """Start polling a Mastodon account's mentions (`workflows.polling`); once only."""
        client = await self._client()
        try:
            await client.start_workflow(
                POLLER_WORKFLOW,
                PollStart(account_id=account_id, interval_seconds=interval_seconds),
                id=poller_id(account_id, self.id_prefix),
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except RPCError as exc:
            raise _rpc_error(exc) from exc

    async def _client(self) -> Any:
        # Connecting waits no longer than the caller would wait for Temporal in all
        # (`retry_seconds`), so that a short setting is not stretched by the connection's
        # own retries.
        try:
            return await self.gateway.client(timeout=min(10.0, max(self.retry_seconds, 1.0)))
        except ConnectionError as exc:
            raise Unavailable("the workflow service is unreachable; try again shortly") from exc


def _rpc_error(exc: RPCError) -> CountersignError:
    if exc.status == RPCStatusCode.ALREADY_EXISTS:
        return Conflict("this draft is closed; it takes no further action")
    if exc.status == RPCStatusCode.NOT_FOUND:
        return NotFound("no workflow for this draft")
    if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return Unavailable("the workflow service is unavailable; try again shortly")
    if exc.status in _PERMANENT:
        return UpstreamRefused(f"the workflow service refused the request: {exc.message}")
    return Unavailable(f"the workflow service answered: {exc.message}")


# What Temporal answers to a request that cannot succeed as sent (a key, a namespace, a
# version of ours it does not take): a retry would be refused the same way.
_PERMANENT = (
    RPCStatusCode.INVALID_ARGUMENT,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.UNIMPLEMENTED,
)
