"""The rulebook of a reply's life: who may take which action in which state, and why not;
the state after a decision; the role a person acts in; the next alarm; and what the record
must show before a reply may leave.

One place for these rules, pure (no Temporal, no database), so that every layer asks the
same question and gets the same answer: the workflow's validators and handlers, the API's
pre-checks and the `allowed_actions` of a draft's view, the pages (which show exactly
those), and the publish activity's re-check of the record before a channel is called.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from lifecycle.words import (
    EDITABLE,
    EXPIRABLE,
    PUBLISHABLE,
    STAGE_ORDER,
    WITHDRAWABLE,
    Action,
    AlarmKind,
    DecisionKind,
    DraftStatus,
    ErrorKind,
    PostStatus,
    Role,
)


@dataclass(frozen=True)
class Person:
    """Someone asking: their username and the roles they hold now."""

    username: str
    roles: frozenset[str]

    @classmethod
    def of(cls, username: str, roles: Iterable[str]) -> Person:
        return cls(username, frozenset(str(r) for r in roles))

    def holds(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True, kw_only=True)
class Draft:
    """What the rules need to know of a draft."""

    author: str
    status: str
    stage: str | None
    version: int
    route: tuple[str, ...] = ()
    # reviewer -> the one stage they filled on this draft (separation of duties)
    reviewers: Mapping[str, str] = field(default_factory=dict)
    # The open stage is past its review time (escalated).
    sla_breached: bool = False
    # stage -> the role that may also decide it once it is overdue
    backup_roles: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    """Why an action is not allowed: its kind (an HTTP status to the API) and the reason."""

    kind: ErrorKind
    reason: str


def _forbidden(reason: str) -> Refusal:
    return Refusal(ErrorKind.forbidden, reason)


def _conflict(reason: str) -> Refusal:
    return Refusal(ErrorKind.conflict, reason)


def _invalid(reason: str) -> Refusal:
    return Refusal(ErrorKind.invalid, reason)


# --- each action ---------------------------------------------------------------------------


def may_submit(draft: Draft, person: Person, *, version: int | None = None) -> Refusal | None:
    """The author submits the text they saw (`version`, when the caller says which)."""
    if person.username != draft.author:
        return _forbidden("only the draft's author can submit it")
    if draft.status not in EDITABLE:
        return _conflict(f"a draft that is {draft.status} cannot be submitted")
    return _seen(draft, version)


def may_edit(draft: Draft, person: Person, *, expected_version: int) -> Refusal | None:
    if person.username != draft.author:
        return _forbidden("only the draft's author can edit it")
    if draft.status not in EDITABLE:
        return _conflict(f"a draft that is {draft.status} cannot be edited")
    if expected_version != draft.version:
        return _conflict(
            f"version {expected_version} is stale; the current version is {draft.version}"
        )
    return None


def may_decide(
    draft: Draft,
    person: Person,
    *,
    stage: str,
    decision: str = DecisionKind.approve,
    version: int,
    comment: str | None = None,
) -> Refusal | None:
    """Holders of a stage's role decide it; once it is overdue, so may its backup role.
    Never the author, and never someone who filled another stage of this draft."""
    if not person.holds(stage) and not _backs_up(draft, person, stage):
        return _forbidden(f"deciding the {stage} stage needs the {stage} role")
    if person.username == draft.author:
        return _forbidden("the author of a draft never decides on it")
    filled = draft.reviewers.get(person.username)
    if filled is not None and filled != stage:
        return _forbidden(f"{person.username} already decided the {filled} stage of this draft")
    if draft.status != DraftStatus.in_review or draft.stage != stage:
        at = f" at stage {draft.stage}" if draft.stage else ""
        return _conflict(f"the draft is {draft.status}{at}; no {stage} decision is open")
    if version != draft.version:
        return _conflict(f"you reviewed version {version}; the current version is {draft.version}")
    if decision not in set(DecisionKind):
        return _invalid(f"unknown decision {decision!r}")
    if decision != DecisionKind.approve and not (comment or "").strip():
        return _invalid(f"a comment is required to {decision.replace('_', ' ')}")
    return None


def may_publish(
    draft: Draft, person: Person, *, later: bool = False, version: int | None = None
) -> Refusal | None:
    """A publisher who is not the author posts an approved draft now, or asks for a `later`
    time (also while it is in review: the time is kept until the approval comes); a failed
    publication is tried again now."""
    if not person.holds(Role.publisher):
        return _forbidden("publishing needs the publisher role")
    if person.username == draft.author:
        return _forbidden("the author of a draft never publishes it")
    allowed = draft.status == DraftStatus.approved or (draft.status in PUBLISHABLE and not later)
    if allowed or (draft.status == DraftStatus.in_review and later):
        return _seen(draft, version)
    now = " now; ask for a later time" if draft.status == DraftStatus.in_review else ""
    return _conflict(f"a draft that is {draft.status} cannot be published{now}")


def may_withdraw(draft: Draft, person: Person) -> Refusal | None:
    """The author or a supervisor; a publisher abandons a publication the channel refused."""
    abandons = draft.status == DraftStatus.publish_failed and person.holds(Role.publisher)
    mine = person.username == draft.author
    if not mine and not person.holds(Role.supervisor) and not abandons:
        return _forbidden(
            "only the author or a supervisor can withdraw a draft "
            "(and a publisher one whose publication failed)"
        )
    if draft.status not in WITHDRAWABLE:
        return _conflict(f"a draft that is {draft.status} cannot be withdrawn")
    return None


def _seen(draft: Draft, version: int | None) -> Refusal | None:
    if version is not None and version != draft.version:
        return _conflict(f"you acted on version {version}; the current version is {draft.version}")
    return None


def _backs_up(draft: Draft, person: Person, stage: str) -> bool:
    """The stage is open and overdue, and the person holds its backup role."""
    backup = draft.backup_roles.get(stage)
    return (
        backup is not None
        and person.holds(backup)
        and draft.sla_breached
        and draft.status == DraftStatus.in_review
        and draft.stage == stage
    )


# --- one post, one reply ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Post:
    """What the rules need to know of a post before someone drafts a reply to it."""

    id: int
    status: str
    assignee: str | None
    open_draft: tuple[int, str] | None  # (id, author) of its open draft, if it has one
    replies: int  # public replies out or on their way
    replies_allowed: int  # one, unless a supervisor allowed a follow-up
    erased: bool  # its text and author were erased: there is nobody left to answer


def may_draft(post: Post, person: Person) -> Refusal | None:
    """A post gets at most one open draft and one public reply (invariant 8): the agent it
    is assigned to (or anyone, while it is unassigned) drafts it; a follow-up reply needs a
    supervisor's explicit allowance. An erased post takes none: its author asked to be
    forgotten, or its time was up."""
    if post.erased:
        return _conflict(
            f"post {post.id} was erased (its retention period ended, or its author asked); "
            "it takes no reply"
        )
    if post.status == PostStatus.expired:
        return _conflict(f"post {post.id} is expired; it takes no new reply")
    if post.status == PostStatus.dismissed:
        return _conflict(
            f"post {post.id} was dismissed as needing no reply; a supervisor may restore it"
        )
    if post.assignee not in (None, person.username):
        return _conflict(
            f"post {post.id} is assigned to {post.assignee}; a supervisor may reassign it"
        )
    if post.open_draft is not None:
        draft_id, author = post.open_draft
        return _conflict(f"post {post.id} already has an open draft: draft {draft_id} by {author}")
    if post.replies >= post.replies_allowed:
        return _conflict(
            f"post {post.id} already has its public reply; a follow-up needs a supervisor's "
            "allowance"
        )
    return None


# --- all actions at once ------------------------------------------------------------------


def judge(draft: Draft, person: Person) -> dict[Action, Refusal | None]:
    """Every action, with None where this person may take it now and the refusal where not.
    A decision is judged at the open stage on the current version; publishing, now or at a
    later time, whichever this state allows."""
    stage = draft.stage or ""
    publish = may_publish(draft, person)
    if publish is not None and may_publish(draft, person, later=True) is None:
        publish = None  # not now, but at a later time
    return {
        Action.submit: may_submit(draft, person),
        Action.edit: may_edit(draft, person, expected_version=draft.version),
        Action.decide: may_decide(draft, person, stage=stage, version=draft.version)
        if stage
        else _conflict(f"the draft is {draft.status}; no decision is open"),
        Action.publish: publish,
        Action.withdraw: may_withdraw(draft, person),
    }


def allowed_actions(draft: Draft, person: Person) -> list[Action]:
    """The actions this person may take on this draft now, in the order of a reply's life."""
    return [action for action, refusal in judge(draft, person).items() if refusal is None]


# --- what an action does ------------------------------------------------------------------


def deciding_role(draft: Draft, person: Person, stage: str) -> str:
    """The role a person decides a stage in: the stage's own, else its backup role (an
    overdue stage decided by, say, a supervisor is recorded as the supervisor's)."""
    if person.holds(stage):
        return stage
    return draft.backup_roles.get(stage, stage)


def withdrawing_role(draft: Draft, person: Person) -> str:
    if person.username == draft.author:
        return Role.agent
    return Role.supervisor if person.holds(Role.supervisor) else Role.publisher


def after_decision(route: Collection[str], stage: str, decision: str) -> tuple[str, str | None]:
    """The status and open stage after a decision: the next stage of the route, approved
    after the last, or closed by a rejection or a request for changes."""
    if decision == DecisionKind.reject:
        return DraftStatus.rejected, None
    if decision == DecisionKind.request_changes:
        return DraftStatus.changes_requested, None
    stages = list(route)
    later = stages[stages.index(stage) + 1 :] if stage in stages else []
    return (DraftStatus.in_review, later[0]) if later else (DraftStatus.approved, None)


# --- time limits --------------------------------------------------------------------------


class Timed(Protocol):
    """What the next alarm depends on (the workflow's `DraftState` has these)."""

    draft_id: int
    status: str
    stage: str | None
    review_round: int
    stage_opened_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class Alarm:
    at: datetime
    kind: AlarmKind
    key: str  # the event key its record is written under (one per alarm)


def next_alarm(
    draft: Timed,
    *,
    stage_seconds: Mapping[str, float],
    remind_fraction: float,
    fired: Collection[str],
) -> Alarm | None:
    """The earliest alarm still to go off: the open stage's reminder (at `remind_fraction`
    of its time) and then its escalation, and the post's deadline while the draft is open.
    `fired` holds the event keys of the alarms already recorded."""
    alarms: list[Alarm] = []
    stage, opened = draft.stage, draft.stage_opened_at
    seconds = stage_seconds.get(stage) if stage is not None else None
    if draft.status == DraftStatus.in_review and seconds is not None and opened is not None:
        key = f"draft-{draft.draft_id}/sla/{stage}/r{draft.review_round}"
        remind, escalate = f"{key}/{AlarmKind.remind}", f"{key}/{AlarmKind.escalate}"
        if remind_fraction > 0 and remind not in fired and escalate not in fired:
            at = opened + timedelta(seconds=seconds * remind_fraction)
            alarms.append(Alarm(at, AlarmKind.remind, remind))
        elif escalate not in fired:
            alarms.append(Alarm(opened + timedelta(seconds=seconds), AlarmKind.escalate, escalate))
    if draft.expires_at is not None and draft.status in EXPIRABLE:
        key = f"draft-{draft.draft_id}/{AlarmKind.expire}"
        alarms.append(Alarm(draft.expires_at, AlarmKind.expire, key))
    return min(alarms, key=lambda a: (a.at, a.kind, a.key)) if alarms else None


# --- before a reply leaves: the record itself -----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RecordedDecision:
    """A decision row as the database holds it."""

    stage: str
    decision: str
    reviewer: str
    version: int
    review_round: int
    content_sha256: str | None


def unapproved(
    *,
    author: str,
    publisher: str,
    publisher_now: Person | None,
    route: Collection[str],
    version: int,
    content_sha256: str,
    review_round: int,
    decisions: Iterable[RecordedDecision],
) -> str | None:
    """Why the record does not allow this version to be posted, or None if it does.

    Every stage of the version's route needs an approval in this review round, of this
    version and this exact text (its hash), by someone who is not the author and who filled
    no other stage of the draft; and the publisher is not the author and may publish now
    (`publisher_now`: their account as the record has it, None if it is disabled or gone):
    a reply scheduled hours ago, or asked for while in review, leaves only while the person
    who asked still holds the publisher role. Checked from the database in the transaction
    that claims the publication, whatever the workflow says.
    """
    if not route:
        return "the version has no approval route: it was never submitted"
    if publisher == author:
        return f"{publisher} wrote this draft and may not publish it"
    if publisher_now is None:
        return f"{publisher} may no longer publish: their account is disabled or gone"
    if not publisher_now.holds(Role.publisher):
        return f"{publisher} may no longer publish: they no longer hold the publisher role"
    filled: dict[str, set[str]] = {}
    approvals: dict[str, RecordedDecision] = {}
    for d in decisions:
        filled.setdefault(d.reviewer, set()).add(d.stage)
        current = d.version == version and d.review_round == review_round
        if current and d.decision == DecisionKind.approve:
            approvals[d.stage] = d
    for stage in sorted(route, key=_stage_index):
        approval = approvals.get(stage)
        if approval is None:
            return f"no {stage} approval of version {version} is on record"
        if approval.content_sha256 != content_sha256:
            return f"the {stage} approval on record is for other text than version {version}"
        if approval.reviewer == author:
            return f"the {stage} approval on record is by the draft's author"
        if len(filled[approval.reviewer]) > 1:
            stages = " and ".join(sorted(filled[approval.reviewer], key=_stage_index))
            return f"{approval.reviewer} is on record for two stages ({stages})"
    return None


def _stage_index(stage: str) -> int:
    order = [str(s) for s in STAGE_ORDER]
    return order.index(stage) if stage in order else len(order)
