"""What the API, the workflows and the activities agree on: names and dataclasses.

Workflow code imports only this module and temporalio (determinism). Activities take one
dataclass argument, so fields can be added later without breaking running workflows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def workflow_id(draft_id: int) -> str:
    return f"draft-{draft_id}"


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One state change of a draft: its projection and its audit event, committed together.

    `event_key` makes the write idempotent: a retried activity finds its event and does
    nothing more.
    """

    event_key: str
    draft_id: int
    status: str
    stage: str | None
    actor: str
    role: str
    action: str
    version: int | None = None
    content_sha256: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TransitionResult:
    seq: int
    applied: bool  # False when the event was already recorded (a retry)
