"""The worker's check of every action's seal, before any validator sees the request.

An update reaches a workflow from whoever can reach the Temporal frontend. The API seals
the actions it sends for authenticated people (`lifecycle.seals`); this interceptor
refuses an update whose seal is missing, forged, expired or made for another workflow,
action or update id, so the workflow's validators (and the rulebook) only ever judge what
the API vouched for. A refused update is rejected before it is accepted: nothing is
written and nothing enters the workflow's history.

Validators run only when an update first arrives, never on replay, so a key rotated later
cannot make an old history fail to replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from lifecycle import seals
from lifecycle.words import ErrorKind


class SealCheck(Interceptor):
    """Built with the keys that may have sealed an action (the first of the API's)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not any(keys):
            raise ValueError("the worker needs the key the API seals actions with")
        self.keys = tuple(k for k in keys if k)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        keys = self.keys

        class _Inbound(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                request: Any = input.args[0] if input.args else None
                try:
                    seals.verify(
                        keys,
                        request,
                        workflow_id=workflow.info().workflow_id,
                        update=input.update,
                        update_id=input.id,
                        now_ms=int(workflow.now().timestamp() * 1000),
                    )
                except (seals.SealError, TypeError) as exc:
                    raise ApplicationError(
                        f"refused: {exc}", type=ErrorKind.forbidden, non_retryable=True
                    ) from None
                super().handle_update_validator(input)

        return _Inbound
