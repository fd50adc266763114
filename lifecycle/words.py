"""The product's words for a reply's life, defined once: roles, statuses, stages, decisions,
actions, alarms and the kinds of refusal.

Pure (the standard library only): the workflow, the activities, the API, the records and
the pages all import these, and nothing here imports them back. Being `StrEnum`s, each
member is also the plain string that is stored, sent over Temporal and shown in JSON.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    agent = "agent"
    comms = "comms"
    legal = "legal"
    publisher = "publisher"
    supervisor = "supervisor"
    auditor = "auditor"
    admin = "admin"


class PostStatus(StrEnum):
    new = "new"
    assigned = "assigned"
    answered = "answered"
    expired = "expired"
    dismissed = "dismissed"  # needs no reply (`DismissReason`); a supervisor may restore it


class QueueOrder(StrEnum):
    """The order of a list of posts: by arrival (oldest first), or most urgent first, by
    when each post's first reply is due (`posts.respond_by`): an urgent post that came a
    minute ago goes before a normal one that has waited an hour."""

    arrival = "arrival"
    due = "due"


class Presence(StrEnum):
    """Whether an agent takes posts now: the router offers posts only to `available`
    agents, and gives back the untouched posts of one who goes `away` or `offline`."""

    available = "available"
    away = "away"
    offline = "offline"


class DismissReason(StrEnum):
    """Why a post needs no reply."""

    spam = "spam"
    praise_acknowledged = "praise_acknowledged"
    duplicate = "duplicate"
    off_topic = "off_topic"
    handled_elsewhere = "handled_elsewhere"
    # Its text was erased (its author asked, `records.erasure`, or its retention ended)
    # while it waited: nobody can answer it. Nobody chooses it.
    erased = "erased"


# The reasons a person may give (the erasure gives its own).
CHOSEN_DISMISS_REASONS = tuple(reason for reason in DismissReason if reason != DismissReason.erased)


class DraftStatus(StrEnum):
    draft = "draft"
    in_review = "in_review"
    changes_requested = "changes_requested"
    approved = "approved"
    scheduled = "scheduled"
    published = "published"
    publish_failed = "publish_failed"
    rejected = "rejected"
    withdrawn = "withdrawn"
    expired = "expired"


class ReviewStage(StrEnum):
    """An approval stage; each is decided by holders of the role of the same name."""

    comms = "comms"
    legal = "legal"


class DecisionKind(StrEnum):
    approve = "approve"
    reject = "reject"
    request_changes = "request_changes"


class Action(StrEnum):
    """What a person asks of a draft; each is one workflow update of the same name."""

    submit = "submit"
    edit = "edit"
    decide = "decide"
    publish = "publish"
    withdraw = "withdraw"


class AlarmKind(StrEnum):
    """A durable timer's purpose: a stage's reminder, its escalation, the post's deadline."""

    remind = "remind"
    escalate = "escalate"
    expire = "expire"


class ErrorKind(StrEnum):
    """Why an action is refused; the API maps each to an HTTP status (403, 409, 422, 404)."""

    forbidden = "Forbidden"
    conflict = "Conflict"
    invalid = "Invalid"
    not_found = "NotFound"


# Groups of statuses the rules speak of.
TERMINAL = frozenset(
    {DraftStatus.published, DraftStatus.rejected, DraftStatus.withdrawn, DraftStatus.expired}
)
OPEN = frozenset(DraftStatus) - TERMINAL  # a post has at most one draft in these
EDITABLE = frozenset({DraftStatus.draft, DraftStatus.changes_requested})
WITHDRAWABLE = OPEN
# Published now; `publish_failed`: a publisher tries again.
PUBLISHABLE = frozenset({DraftStatus.approved, DraftStatus.publish_failed})
# Still open when the post's deadline passes: the draft expires.
EXPIRABLE = frozenset(
    {
        DraftStatus.draft,
        DraftStatus.in_review,
        DraftStatus.changes_requested,
        DraftStatus.approved,
    }
)
STAGE_ORDER: tuple[ReviewStage, ...] = (ReviewStage.comms, ReviewStage.legal)

# The actor and role of what Countersign does by itself (alarms, the purge, account changes).
SYSTEM_ACTOR, SYSTEM_ROLE = "countersign", "system"
# Who else acts without a person, as the audit record and a dismissal name them: the triage
# at ingest (spam), and an erasure whose post's last open reply closed after it.
TRIAGE_ACTOR, ERASURE_ACTOR = "triage", "erasure"
# No account takes these names: the record could not tell the person from the system.
SYSTEM_ACTORS = frozenset({SYSTEM_ACTOR, TRIAGE_ACTOR, ERASURE_ACTOR})
