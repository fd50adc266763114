"""The worker's log lines say which draft and whose action (issue 25, item 4), as the API's
do: each activity runs with `countersign.logs`' draft and actor set from what it was given.

The draft comes from the workflow's id (`workflows.contracts.workflow_id`); the actor from
the activity's input where it names one (a transition, a decision, a publication). Sync
activities run on the executor's threads in a copy of this context (temporalio copies it),
so what is set here is what their lines carry; the copy ends with the activity.
"""

from __future__ import annotations

import re
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from countersign import logs

# "<prefix>draft-<id>", the approval workflow's id; other workflows' activities name none.
_DRAFT = re.compile(r"draft-(\d+)$")


def draft_of(workflow_id: str | None) -> int | None:
    found = _DRAFT.search(workflow_id or "")
    return int(found.group(1)) if found else None


def actor_of(args: Any) -> str | None:
    """The person an activity acts for, where its input says: its `actor` (a name, or an
    `Actor`), or a decision's `reviewer`."""
    given = args[0] if args else None
    named = getattr(given, "actor", None) or getattr(given, "reviewer", None)
    name = getattr(named, "username", named)
    return name if isinstance(name, str) else None


class LogContext(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Activity(next)


class _Activity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        draft = logs.DRAFT_ID.set(draft_of(activity.info().workflow_id))
        actor = logs.ACTOR.set(actor_of(input.args))
        try:
            return await super().execute_activity(input)
        finally:
            logs.DRAFT_ID.reset(draft)
            logs.ACTOR.reset(actor)
