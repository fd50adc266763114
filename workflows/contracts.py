"""What the API, a draft's workflow and its activities agree on: names and dataclasses (the
background workflows' are in `workflows.background_contracts`).

Workflow code imports only these modules and temporalio (determinism). Activities take one
dataclass argument, so fields can be added later without breaking running workflows.

No `from __future__ import annotations` here: the payload converter resolves these types
on every message, and real annotations resolve several times faster than strings.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from lifecycle.seals import Seal
from lifecycle.words import DraftStatus


def workflow_id(draft_id: int, prefix: str = "") -> str:
    """`draft-<id>`; a prefix keeps deployments that share a namespace apart."""
    return f"{prefix}draft-{draft_id}"


def delivery_workflow_id(delivery_id: int, prefix: str = "") -> str:
    """`notify-<id>`: one `NotificationDelivery` per outbound notification."""
    return f"{prefix}notify-{delivery_id}"


# A draft's workflow's signal: its record changed without it (a customer's erasure withdrew
# the draft), so it reads its standing again. Anyone who reaches Temporal could send it: it
# only makes the workflow read the record.
LOOK_AGAIN = "look_again"


@dataclass(frozen=True, kw_only=True)
class Recording:
    """What every activity that records a transition of a draft is given."""

    # Makes the write idempotent: a retried activity finds its event and does nothing more.
    event_key: str
    # The draft's transition count the workflow knows (compare-and-set); None when the
    # workflow knows this transition is already recorded and asks only for the answer.
    expected: int | None
    draft_id: int


@dataclass(frozen=True, kw_only=True)
class Transition(Recording):
    """One state change of a draft: its projection and its audit event, committed together."""

    status: str
    stage: str | None
    actor: str
    role: str
    action: str
    version: int | None = None
    content_sha256: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


# --- the approval workflow's messages ----------------------------------------------------


class ActivityName(StrEnum):
    """Every activity's registered name, defined once (the workflows call them by method
    reference; these names are what Temporal's history records)."""

    record_transition = "record_transition"
    submit_checks = "submit_checks"
    save_version = "save_version"
    record_decision = "record_decision"
    record_alarm = "record_alarm"
    publish_reply = "publish_reply"
    deliver_notification = "deliver_notification"
    poll_mentions = "poll_mentions"
    sign_checkpoint = "sign_checkpoint"
    purge_expired = "purge_expired"
    route_queues = "route_queues"
    read_standing = "read_standing"


@dataclass(frozen=True, kw_only=True)
class StandingOf:
    draft_id: int


@dataclass(frozen=True, kw_only=True)
class Actor:
    username: str
    roles: list[str]


@dataclass(frozen=True, kw_only=True)
class DraftStart:
    draft_id: int
    author: str
    version: int = 1
    # The post's deadline: a draft still open then expires (see `policies.sla`).
    expires_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ReviewClock:
    """A submission's review SLAs: each stage's time in seconds (stages without one are
    absent), the fraction of it after which reviewers are reminded (0: never), and the role
    that may also decide a stage once it is overdue."""

    seconds: dict[str, float]
    remind_fraction: float
    backup_roles: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SubmitRequest:
    actor: Actor
    version: int | None = None  # the version the author submits (None: the current one)
    seal: Seal | None = None  # the API's (see `lifecycle.seals`); refused without


@dataclass(frozen=True, kw_only=True)
class EditRequest:
    actor: Actor
    body: str
    expected_version: int
    seal: Seal | None = None


@dataclass(frozen=True, kw_only=True)
class DecisionRequest:
    actor: Actor
    stage: str
    decision: str  # lifecycle.words.DecisionKind
    version: int
    comment: str | None = None
    seal: Seal | None = None


@dataclass(frozen=True, kw_only=True)
class WithdrawRequest:
    actor: Actor
    seal: Seal | None = None


@dataclass(kw_only=True)
class DraftState:
    """What the workflow knows; the query returns it."""

    draft_id: int
    author: str
    status: str = DraftStatus.draft
    stage: str | None = None
    version: int = 1
    route: list[str] = field(default_factory=list)
    review_round: int = 0
    # reviewer -> the one stage they filled on this draft (separation of duties)
    reviewers: dict[str, str] = field(default_factory=dict)
    scheduled_at: datetime | None = None
    publisher: str | None = None
    # Transitions recorded so far: each activity that records one compares and sets it.
    transitions: int = 0
    # Event keys of transitions learnt from the database rather than made here (see Recorded).
    recorded_keys: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    clock: ReviewClock | None = None
    stage_opened_at: datetime | None = None
    sla_breached: bool = False
    late_approval: str = "hold"
    # Event keys of the reminders, escalations and expiry this workflow recorded.
    alarms: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Acted:
    """What a decision, a publish or a withdrawal answers: where the draft is now. Small
    on purpose: every update's answer is kept in the workflow's history, and the whole
    `DraftState` each time doubled a draft's history (issue 24); the API reads the draft
    from the database anyway, and the state is the `current` query's answer. (The caller
    knows which draft it asked about; the review round is the state's.)"""

    status: str
    stage: str | None
    version: int
    scheduled_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Submitted:
    """What a submission answers: whether the checks blocked it; the route and the review
    clock stay the workflow's, and what the checks found is the version's record, which the
    API reads (the findings quote the text: the history keeps no words, `records.draft_texts`).
    The whole `SubmitOutcome` is the checks' answer to the workflow (its local activity's
    result)."""

    blocked: bool
    ruleset_version: str
    version: int | None = None  # the version checked (None in answers recorded before)
    # Only in answers recorded before the findings were left out of the history.
    findings: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class SubmitOutcome:
    blocked: bool
    findings: list[dict[str, Any]]  # empty now: see `Submitted`
    route: list[str]
    ruleset_version: str
    clock: ReviewClock | None = None
    late_approval: str = "hold"  # see `policies.rule_sections.LATE_APPROVAL`


@dataclass(frozen=True, kw_only=True)
class Standing:
    """A draft's lifecycle as the database has it."""

    status: str
    stage: str | None
    version: int
    review_round: int
    route: list[str]
    transitions: int
    reviewers: dict[str, str]
    scheduled_at: datetime | None
    publisher: str | None
    recorded_keys: list[str]
    stage_opened_at: datetime | None
    sla_breached: bool


# What an activity that records a transition did (`Recorded.status`):
APPLIED = "applied"  # wrote it now
RECORDED = "recorded"  # found it written by an earlier attempt
STALE = "stale"  # wrote nothing: the draft had moved on since the workflow last looked


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """A transition activity's answer.

    Each write compares the draft's transition count with the one the workflow expects. The
    two differ only when a workflow task that ran a local activity was lost after the
    activity's write committed (a worker crash, or a task the server dropped); the workflow
    then replays without knowing of that write. `recorded` and `stale` carry the database's
    `standing`, which the workflow adopts before it goes on.
    """

    status: str
    standing: Standing | None = None
    outcome: SubmitOutcome | None = None  # submit_checks only
    # Notifications this transition sends outside the app, each by its own activity.
    deliveries: list[int] = field(default_factory=list)
    failure: str | None = None  # publish_reply: the channel's reason for refusing the reply


# --- activity inputs ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CheckSubmission(Recording):
    """Run the policies on a version and record the outcome (findings, route, transition)."""

    version: int
    actor: str
    review_round: int


@dataclass(frozen=True, kw_only=True)
class SaveVersion(Recording):
    version: int
    body: str
    actor: str


@dataclass(frozen=True, kw_only=True)
class RecordDecision(Recording):
    version: int
    review_round: int
    stage: str
    decision: str
    reviewer: str
    role: str  # the role the reviewer decided in (a backup role on an overdue stage)
    comment: str | None
    next_status: str
    next_stage: str | None
    next_stage_seconds: float | None = None  # the next stage's SLA


@dataclass(frozen=True, kw_only=True)
class Alarm(Recording):
    """A durable timer went off: record it (and notify) unless the draft moved on."""

    kind: str  # lifecycle.words.AlarmKind
    stage: str | None
    review_round: int
    version: int


@dataclass(frozen=True, kw_only=True)
class DeliveryJob:
    delivery_id: int


@dataclass(frozen=True, kw_only=True)
class PublishRequest:
    actor: Actor
    at: datetime | None = None  # None: now
    version: int | None = None  # the version the publisher saw (None: the current one)
    seal: Seal | None = None


@dataclass(frozen=True, kw_only=True)
class PublishJob(Recording):
    version: int
    actor: str
