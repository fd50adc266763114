"""Activities: the only workflow-side code that touches the database or the outside world.

Each one commits a draft's projection and its audit event in one transaction, and is
idempotent by its event key: a retried activity finds its event and writes nothing twice.
Each write is also a compare-and-set on the draft's transition count (see `_begin` and
`workflows.approval`), so a write from an out-of-date view of the draft changes nothing.
Built as methods of a class holding what they need (the database, the compiled rule set),
as in temporalio's samples, so the worker constructs them once.

They run on every action, so they write with SQLAlchemy Core statements on the tables (a
handful of statements per transaction, built once) rather than through the ORM's unit of
work.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import smtplib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import CursorResult, bindparam, case, select, update
from sqlalchemy.engine import Connection
from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors import mastodon
from connectors.base import Publisher, PublishRefused, RateLimited, Reply, publisher_class
from connectors.inbound import sign
from policies.engine import RuleBook, RuleSet, TemplateBasis
from policies.sla import ServiceLevels
from records import audit, channels, notifications, posts, rulesets
from records.db import Database
from records.drafts import add_version
from records.models import PostCreate
from records.notifications import EMAIL, WEBHOOK
from records.tables import (
    DECISIONS,
    DELIVERIES,
    DRAFTS,
    EVENTS,
    NOTIFICATIONS,
    POSTS,
    PUBLICATIONS,
    STAGE_REVIEWS,
    USERS,
    VERSIONS,
)
from records.types import utcnow
from workflows.contracts import (
    APPLIED,
    ESCALATE,
    EXPIRE,
    RECORDED,
    REMIND,
    STALE,
    Alarm,
    CheckSubmission,
    DeliveryJob,
    Polled,
    PollJob,
    PublishJob,
    RecordDecision,
    Recorded,
    Recording,
    ReviewClock,
    SaveVersion,
    Standing,
    SubmitOutcome,
    Transition,
)

log = logging.getLogger("countersign.activities")


class RecordActivities:
    def __init__(
        self,
        database: Database,
        rules: RuleSet,
        levels: ServiceLevels | None = None,
        outbound: Sequence[str] = (),
    ) -> None:
        """`rules` is the shipped rule set, in force until an admin uploads another;
        `levels` the review SLAs; `outbound` the notification channels configured outside
        the app (webhook, email)."""
        self.database = database
        self.rules = RuleBook(rules)
        self.levels = levels or ServiceLevels()
        self.outbound = tuple(outbound)

    def _clock(self, route: list[str], priority: str) -> ReviewClock:
        return ReviewClock(
            seconds=self.levels.stage_seconds(route, priority),
            remind_fraction=self.levels.reminder_fraction,
            backup_roles={s: r for s, r in self.levels.backup_roles.items() if s in route},
        )

    def _notify(self, connection: Connection, **event: Any) -> list[int]:
        return notifications.notify(connection, outbound=self.outbound, **event)

    @activity.defn(name="record_transition")
    def record_transition(self, transition: Transition) -> Recorded:
        """Apply a draft's new status and stage and append its audit event, in one transaction."""
        with self.database.write() as connection:
            closing = (
                {"sla_due_at": None, "sla_breached": False} if transition.stage is None else {}
            )
            found = _begin(
                connection, transition, status=transition.status, stage=transition.stage, **closing
            )
            if found is not None:
                return found
            if closing:
                _close_stage(connection, transition.draft_id, transition.status)
            audit.append(
                connection,
                audit.NewEvent(
                    actor=transition.actor,
                    role=transition.role,
                    action=transition.action,
                    payload=transition.payload,
                    draft_id=transition.draft_id,
                    version=transition.version,
                    content_sha256=transition.content_sha256,
                    event_key=transition.event_key,
                ),
            )
            return Recorded(status=APPLIED)

    @activity.defn(name="submit_checks")
    def submit_checks(self, request: CheckSubmission) -> Recorded:
        """Run the policies on the version; record findings, the route and the transition."""
        with self.database.write() as connection:
            row = _version_row(connection, _SUBMISSION, request.draft_id, request.version)
            if row.transitions != request.expected:
                answer = _not_now(connection, request)
                if answer.status == RECORDED:  # an earlier attempt ran the checks
                    outcome = _outcome(row.findings, row.route, row.ruleset_version)
                    clock = self._clock(list(row.route), str(row.priority))
                    return replace(answer, outcome=replace(outcome, clock=clock))
                return answer
            version = rulesets.active_version(connection)
            rules = self.rules.get(version, lambda v: rulesets.source_of(connection, v))
            result = rules.check(
                row.body, str(row.channel), post_text=row.post_text, template=_basis(row)
            )
            clock = self._clock(result.route, str(row.priority))
            now = utcnow()
            first = result.route[0] if result.route else None
            due = _due(now, clock.seconds.get(first or ""))
            opened = (
                {}
                if result.blocked
                else {
                    "status": "in_review",
                    "stage": first,
                    "route": result.route,
                    "review_round": request.review_round,
                    "sla_due_at": due,
                    "sla_breached": False,
                }
            )
            found = _begin(connection, request, **opened)
            if found is not None:
                return found
            deliveries: list[int] = []
            if not result.blocked and first is not None:
                _open_stage(
                    connection,
                    request.draft_id,
                    request.review_round,
                    first,
                    request.version,
                    now,
                    due,
                )
                deliveries = self._notify(
                    connection,
                    event="review_requested",
                    recipients=_reviewers(connection, request.draft_id, row.author, first),
                    message=f"Draft {request.draft_id} waits for your {first} review.",
                    event_key=request.event_key,
                    draft_id=request.draft_id,
                    post_id=row.post_id,
                )
            findings = [f.as_dict() for f in result.findings]
            connection.execute(
                _CHECKED,
                {
                    "b_draft_id": request.draft_id,
                    "b_version": request.version,
                    "new_findings": findings,
                    "new_route": result.route,
                    "new_ruleset_version": result.ruleset_version,
                },
            )
            audit.append(
                connection,
                audit.NewEvent(
                    actor=request.actor,
                    role="agent",
                    action="draft.blocked" if result.blocked else "draft.submitted",
                    payload={
                        "route": result.route,
                        "ruleset_version": result.ruleset_version,
                        "findings": [f.rule_id for f in result.findings],
                        **_template_use(row, result.template, result.skipped),
                    },
                    draft_id=request.draft_id,
                    version=request.version,
                    content_sha256=row.content_sha256,
                    event_key=request.event_key,
                ),
            )
            outcome = _outcome(findings, result.route, result.ruleset_version)
            return Recorded(
                status=APPLIED,
                outcome=replace(
                    outcome,
                    clock=None if result.blocked else clock,
                    late_approval=rules.late_approval,
                ),
                deliveries=deliveries,
            )

    @activity.defn(name="save_version")
    def save_version(self, request: SaveVersion) -> Recorded:
        """A new version of the text: a new row and content hash; earlier approvals are void."""
        with self.database.write() as connection:
            found = _begin(connection, request, version=request.version)
            if found is not None:
                return found
            digest = add_version(
                connection, request.draft_id, request.version, request.body, request.actor
            )
            audit.append(
                connection,
                audit.NewEvent(
                    actor=request.actor,
                    role="agent",
                    action="draft.edited",
                    draft_id=request.draft_id,
                    version=request.version,
                    content_sha256=digest,
                    event_key=request.event_key,
                ),
            )
        return Recorded(status=APPLIED)

    @activity.defn(name="record_decision")
    def record_decision(self, request: RecordDecision) -> Recorded:
        with self.database.write() as connection:
            now = utcnow()
            due = _due(now, request.next_stage_seconds)
            found = _begin(
                connection,
                request,
                status=request.next_status,
                stage=request.next_stage,
                sla_due_at=due,
                sla_breached=False,
            )
            if found is not None:
                return found
            row = _version_row(connection, _CONTENT, request.draft_id, request.version)
            content = row.content_sha256
            _close_stage(connection, request.draft_id, request.decision, stage=request.stage)
            deliveries = self._after_decision(connection, request, row, now, due)
            connection.execute(
                _DECIDED,
                {
                    "draft_id": request.draft_id,
                    "version": request.version,
                    "review_round": request.review_round,
                    "stage": request.stage,
                    "decision": request.decision,
                    "reviewer": request.reviewer,
                    "comment": request.comment,
                    "at": now,
                },
            )
            audit.append(
                connection,
                audit.NewEvent(
                    actor=request.reviewer,
                    role=request.stage,
                    action=f"draft.{request.decision}",
                    payload={"stage": request.stage, "comment": request.comment},
                    draft_id=request.draft_id,
                    version=request.version,
                    content_sha256=content,
                    event_key=request.event_key,
                ),
            )
        return Recorded(status=APPLIED, deliveries=deliveries)

    def _after_decision(
        self,
        connection: Connection,
        request: RecordDecision,
        row: Any,
        now: datetime,
        due: datetime | None,
    ) -> list[int]:
        """Open the next stage, if any, and tell whom the decision concerns."""
        common = {
            "event_key": request.event_key,
            "draft_id": request.draft_id,
            "post_id": row.post_id,
        }
        author = [row.author]
        draft = f"Draft {request.draft_id}"
        if request.next_status == "in_review" and request.next_stage:
            stage = request.next_stage
            _open_stage(
                connection, request.draft_id, request.review_round, stage, request.version, now, due
            )
            return self._notify(
                connection,
                event="review_requested",
                recipients=_reviewers(connection, request.draft_id, row.author, stage),
                message=f"{draft} waits for your {stage} review.",
                **common,
            )
        if request.next_status == "approved":
            publishers = notifications.holders(connection, "publisher")
            return self._notify(
                connection,
                event="approved",
                recipients=[*author, *(p for p in publishers if p != row.author)],
                message=f"{draft} is approved and ready to publish.",
                **common,
            )
        if request.next_status == "changes_requested":
            return self._notify(
                connection,
                event="changes_requested",
                recipients=author,
                message=f"{request.reviewer} ({request.stage}) asked for changes to "
                f"{draft.lower()}: {request.comment}",
                **common,
            )
        return self._notify(
            connection,
            event="rejected",
            recipients=author,
            message=f"{request.reviewer} ({request.stage}) rejected {draft.lower()}: "
            f"{request.comment}",
            **common,
        )

    @activity.defn(name="record_alarm")
    def record_alarm(self, alarm: Alarm) -> Recorded:
        """A reminder, an escalation (the stage is overdue: marked, and the supervisors
        told) or the post's deadline (the draft expires), unless the draft moved on."""
        with self.database.write() as connection:
            now = utcnow()
            values: dict[str, Any] = {}
            if alarm.kind == ESCALATE:
                values = {"sla_breached": True}
            elif alarm.kind == EXPIRE:
                values = {
                    "status": "expired",
                    "stage": None,
                    "sla_due_at": None,
                    "sla_breached": False,
                }
            found = _begin(connection, alarm, **values)
            if found is not None:
                return found
            row = _version_row(connection, _CONTENT, alarm.draft_id, alarm.version)
            common = {
                "event_key": alarm.event_key,
                "draft_id": alarm.draft_id,
                "post_id": row.post_id,
            }
            draft, stage = f"Draft {alarm.draft_id}", alarm.stage
            if alarm.kind == REMIND:
                _mark_stage(connection, alarm, now)
                action = "draft.sla_reminder"
                deliveries = self._notify(
                    connection,
                    event="reminder",
                    recipients=_reviewers(connection, alarm.draft_id, row.author, stage or ""),
                    message=f"Reminder: {draft.lower()} still waits for its {stage} review.",
                    **common,
                )
            elif alarm.kind == ESCALATE:
                _mark_stage(connection, alarm, now)
                action = "draft.sla_breached"
                backup = self.levels.backup_roles.get(stage or "")
                deliveries = self._notify(
                    connection,
                    event="escalated",
                    recipients=[
                        p
                        for p in notifications.holders(
                            connection, "supervisor", *filter(None, [backup])
                        )
                        if p != row.author
                    ],
                    message=f"{draft} is past its {stage} review time"
                    + (f"; {backup} may now decide it." if backup else "."),
                    **common,
                )
            else:
                _close_stage(connection, alarm.draft_id, "expired")
                connection.execute(_EXPIRED_POST, {"post_id": row.post_id, "now": now})
                action = "draft.expired"
                deliveries = self._notify(
                    connection,
                    event="expired",
                    recipients=[row.author, *notifications.holders(connection, "supervisor")],
                    message=f"{draft} expired: the post's reply deadline passed.",
                    **common,
                )
            audit.append(
                connection,
                audit.NewEvent(
                    actor="countersign",
                    role="system",
                    action=action,
                    payload={"stage": stage} if stage else {},
                    draft_id=alarm.draft_id,
                    version=alarm.version,
                    content_sha256=row.content_sha256,
                    event_key=alarm.event_key,
                ),
            )
        return Recorded(status=APPLIED, deliveries=deliveries)


def _due(now: datetime, seconds: float | None) -> datetime | None:
    return now + timedelta(seconds=seconds) if seconds else None


def _open_stage(
    connection: Connection,
    draft_id: int,
    review_round: int,
    stage: str,
    version: int,
    now: datetime,
    due: datetime | None,
) -> None:
    connection.execute(
        _NEW_STAGE,
        {
            "draft_id": draft_id,
            "review_round": review_round,
            "stage": stage,
            "version": version,
            "opened_at": now,
            "due_at": due,
            "reminded_at": None,
            "breached_at": None,
            "closed_at": None,
            "outcome": None,
        },
    )


def _close_stage(
    connection: Connection, draft_id: int, outcome: str, *, stage: str | None = None
) -> None:
    """Close the draft's open stage review (there is at most one) with `outcome`."""
    params = {"b_draft_id": draft_id, "new_closed_at": utcnow(), "new_outcome": outcome}
    if stage is None:
        connection.execute(_CLOSE_OPEN, params)
    else:
        connection.execute(_CLOSE_STAGE, {**params, "b_stage": stage})


def _mark_stage(connection: Connection, alarm: Alarm, at: datetime) -> None:
    """Note a stage's reminder or escalation time."""
    connection.execute(
        _REMINDED if alarm.kind == REMIND else _BREACHED,
        {
            "b_draft_id": alarm.draft_id,
            "b_round": alarm.review_round,
            "b_stage": alarm.stage,
            "at": at,
        },
    )


def _reviewers(connection: Connection, draft_id: int, author: str, stage: str) -> list[str]:
    """Who may review `stage` of the draft: the stage's role holders, except its author and
    anyone who filled another stage of it (separation of duties)."""
    others = {
        r.reviewer
        for r in connection.execute(_OTHER_REVIEWERS, {"draft_id": draft_id, "stage": stage})
    }
    return [p for p in notifications.holders(connection, stage) if p != author and p not in others]


# Stage reviews and reviewers, built once (activities run on every action).
_OPEN_STAGE = (
    STAGE_REVIEWS.c.draft_id == bindparam("b_draft_id"),
    STAGE_REVIEWS.c.closed_at.is_(None),
)
_CLOSED: dict[str, Any] = {
    "closed_at": bindparam("new_closed_at"),
    "outcome": bindparam("new_outcome"),
}
_CLOSE_OPEN = update(STAGE_REVIEWS).where(*_OPEN_STAGE).values(_CLOSED)
_CLOSE_STAGE = (
    update(STAGE_REVIEWS)
    .where(*_OPEN_STAGE, STAGE_REVIEWS.c.stage == bindparam("b_stage"))
    .values(_CLOSED)
)
_THE_STAGE = (
    STAGE_REVIEWS.c.draft_id == bindparam("b_draft_id"),
    STAGE_REVIEWS.c.review_round == bindparam("b_round"),
    STAGE_REVIEWS.c.stage == bindparam("b_stage"),
)
_REMINDED = update(STAGE_REVIEWS).where(*_THE_STAGE).values(reminded_at=bindparam("at"))
_BREACHED = update(STAGE_REVIEWS).where(*_THE_STAGE).values(breached_at=bindparam("at"))
_OTHER_REVIEWERS = select(DECISIONS.c.reviewer).where(
    DECISIONS.c.draft_id == bindparam("draft_id"), DECISIONS.c.stage != bindparam("stage")
)


def _not_found(message: str) -> ApplicationError:
    return ApplicationError(message, type="NotFound", non_retryable=True)


def _outcome(
    findings: list[dict[str, Any]], route: list[str], ruleset: str | None
) -> SubmitOutcome:
    return SubmitOutcome(
        blocked=any(f["severity"] == "block" for f in findings),
        findings=findings,
        route=route,
        ruleset_version=ruleset or "",
    )


def _basis(row: Any) -> TemplateBasis | None:
    """What a template draft was rendered as (`records.models.Draft.template_basis`)."""
    basis = row.template_basis
    if not basis:
        return None
    spans = tuple((int(s), int(e)) for s, e in basis["variable_spans"])
    return TemplateBasis(basis["rendered"], spans)


def _template_use(row: Any, use: str | None, skipped: list[str]) -> dict[str, Any]:
    if use is None:
        return {}
    template = {"id": row.template_id, "version": row.template_version}
    return {"template": {**template, "use": use, "skipped": skipped}}


def _version_row(connection: Connection, query: Any, draft_id: int, version: int) -> Any:
    """One row of a prepared query on a draft's version (see `_of_version`)."""
    row = connection.execute(query, {"draft_id": draft_id, "version": version}).first()
    if row is None:
        raise _not_found(f"draft {draft_id} has no version {version}")
    return row


def _of_version(*columns: Any) -> Any:
    """`columns` of a draft's version, joined with its draft, its inbound post and its
    publication, if any. Built once at import: activities run on every action."""
    return (
        select(*columns)
        .join(DRAFTS, DRAFTS.c.id == VERSIONS.c.draft_id)
        .join(POSTS, POSTS.c.id == DRAFTS.c.post_id)
        .outerjoin(
            PUBLICATIONS,
            (PUBLICATIONS.c.draft_id == VERSIONS.c.draft_id)
            & (PUBLICATIONS.c.version == VERSIONS.c.version),
        )
        .where(
            VERSIONS.c.draft_id == bindparam("draft_id"),
            VERSIONS.c.version == bindparam("version"),
        )
    )


_SUBMISSION = _of_version(
    DRAFTS.c.transitions,
    DRAFTS.c.author,
    POSTS.c.id.label("post_id"),
    POSTS.c.priority,
    VERSIONS.c.body,
    VERSIONS.c.content_sha256,
    VERSIONS.c.findings,
    VERSIONS.c.route,
    VERSIONS.c.ruleset_version,
    POSTS.c.channel,
    POSTS.c.text.label("post_text"),
    DRAFTS.c.template_id,
    DRAFTS.c.template_version,
    DRAFTS.c.template_basis,
)
_CONTENT = _of_version(VERSIONS.c.content_sha256, DRAFTS.c.author, POSTS.c.id.label("post_id"))
_NEW_STAGE = STAGE_REVIEWS.insert()
_EXPIRED_POST = (
    update(POSTS)
    .where(POSTS.c.id == bindparam("post_id"), POSTS.c.status != "answered")
    .values(status="expired", updated_at=bindparam("now"))
)
# A version's policy results, and a decision on it (bind names differ from column names).
_CHECKED = (
    update(VERSIONS)
    .where(
        VERSIONS.c.draft_id == bindparam("b_draft_id"),
        VERSIONS.c.version == bindparam("b_version"),
    )
    .values(
        {
            name: bindparam(f"new_{name}", type_=VERSIONS.c[name].type)
            for name in ("findings", "route", "ruleset_version")
        }
    )
)
_DECIDED = DECISIONS.insert()
_PUBLISHING = _of_version(
    DRAFTS.c.transitions,
    DRAFTS.c.author,
    VERSIONS.c.body,
    VERSIONS.c.content_sha256,
    POSTS.c.id.label("post_id"),
    POSTS.c.channel,
    POSTS.c.external_id,
    POSTS.c.account_id,
    PUBLICATIONS.c.attempts,
    PUBLICATIONS.c.created_at.label("requested_at"),
)


def _begin(connection: Connection, recording: Recording, **values: Any) -> Recorded | None:
    """Open a transition: None when the caller goes on to write it, else the answer.

    The draft row changes first, with a compare-and-set on its transition count, so a write
    based on an out-of-date view of the draft changes nothing (`stale`), and neither does a
    retry of one an earlier attempt recorded (`recorded`). Both answers carry the database's
    standing for the workflow to adopt.
    """
    expected = recording.expected
    if expected is not None and _update_draft(
        connection, recording.draft_id, expected=expected, **values
    ):
        return None  # the common case: one statement, and the event key cannot be taken
    return _not_now(connection, recording)


def _update_draft(
    connection: Connection, draft_id: int, *, expected: int | None = None, **values: Any
) -> bool:
    """Move a draft's transition count on and set `values`: from `expected` only (a
    compare-and-set) when it is given. Whether the row changed."""
    now = utcnow()
    params = {"draft_id": draft_id, "now": now, **{f"new_{k}": v for k, v in values.items()}}
    if expected is not None:
        params["expected"] = expected
    if "stage" in values:
        params["entered"] = now if values["stage"] else None
    query = _draft_update(tuple(values), compare=expected is not None)
    changed: CursorResult[Any] = connection.execute(query, params)
    return changed.rowcount == 1


@functools.cache
def _draft_update(columns: tuple[str, ...], *, compare: bool) -> Any:
    """The UPDATE behind `_update_draft`, built once per shape (activities run on every
    action). Setting `stage` restarts the time in stage, but only when the stage changes."""
    values: dict[str, Any] = {
        "transitions": DRAFTS.c.transitions + 1,
        "updated_at": bindparam("now", type_=DRAFTS.c.updated_at.type),
    }
    for name in columns:
        values[name] = bindparam(f"new_{name}", type_=DRAFTS.c[name].type)
    if "stage" in columns:
        values["stage_entered_at"] = case(
            (DRAFTS.c.stage.is_not_distinct_from(values["stage"]), DRAFTS.c.stage_entered_at),
            else_=bindparam("entered", type_=DRAFTS.c.stage_entered_at.type),
        )
    query = update(DRAFTS).where(DRAFTS.c.id == bindparam("draft_id"))
    if compare:
        query = query.where(DRAFTS.c.transitions == bindparam("expected"))
    return query.values(values)


def _not_now(connection: Connection, recording: Recording) -> Recorded:
    """Why a transition's compare-and-set failed: every recorded transition moved the count
    on, so either this one was recorded by an earlier attempt, or another one was."""
    found = audit.recorded(connection, recording.event_key) is not None
    return Recorded(
        status=RECORDED if found else STALE,
        standing=_standing(connection, recording.draft_id),
        deliveries=notifications.pending_deliveries(connection, recording.event_key)
        if found
        else [],
    )


def _standing(connection: Connection, draft_id: int) -> Standing:
    """The draft's lifecycle as committed: the row, who decided which stage, the schedule,
    and the keys of the events its workflow recorded."""
    draft = connection.execute(
        select(
            DRAFTS.c.status,
            DRAFTS.c.stage,
            DRAFTS.c.version,
            DRAFTS.c.review_round,
            DRAFTS.c.route,
            DRAFTS.c.transitions,
            DRAFTS.c.stage_entered_at,
            DRAFTS.c.sla_breached,
        ).where(DRAFTS.c.id == draft_id)
    ).first()
    if draft is None:
        raise _not_found(f"no draft with id {draft_id}")
    reviewers = connection.execute(
        select(DECISIONS.c.reviewer, DECISIONS.c.stage)
        .where(DECISIONS.c.draft_id == draft_id)
        .order_by(DECISIONS.c.id)
    ).all()
    events = connection.execute(
        select(EVENTS.c.action, EVENTS.c.actor, EVENTS.c.payload, EVENTS.c.event_key)
        .where(EVENTS.c.draft_id == draft_id, EVENTS.c.event_key.is_not(None))
        .order_by(EVENTS.c.seq)
    ).all()
    scheduled = [e for e in events if e.action == "draft.scheduled"]
    return Standing(
        status=draft.status,
        stage=draft.stage,
        version=draft.version,
        review_round=draft.review_round,
        route=list(draft.route),
        transitions=draft.transitions,
        reviewers={r.reviewer: r.stage for r in reviewers},
        scheduled_at=datetime.fromisoformat(json.loads(scheduled[-1].payload)["at"])
        if scheduled
        else None,
        publisher=scheduled[-1].actor if scheduled else None,
        recorded_keys=[e.event_key for e in events],
        stage_opened_at=draft.stage_entered_at if draft.stage else None,
        sla_breached=bool(draft.sla_breached),
    )


HEARTBEAT_EVERY = 1.0  # seconds; the workflow's PUBLISH_HEARTBEAT is a few of these


class _Heartbeats:
    """One side thread per worker process that heartbeats, every second, each publish
    activity blocked in a call to a platform: when the worker dies, the server retries the
    activity after the heartbeat timeout, not after the whole start-to-close timeout.

    A heartbeat is thread-safe in a threaded activity; it is sent from a copy of the
    activity's context (where temporalio keeps the activity's own). One shared thread,
    started on first use, so that a publish costs no thread of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beating: dict[int, contextvars.Context] = {}
        self._thread: threading.Thread | None = None

    @contextmanager
    def during(self) -> Iterator[None]:
        if not activity.in_activity():
            yield
            return
        context = contextvars.copy_context()
        with self._lock:
            self._beating[id(context)] = context
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                del self._beating[id(context)]

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_EVERY)
            with self._lock:
                contexts = list(self._beating.values())
            for context in contexts:
                with contextlib.suppress(Exception):  # the activity ended meanwhile
                    context.run(activity.heartbeat)


_heartbeats = _Heartbeats()


class PublishActivities:
    """Posting a reply at most once: the publication row (UNIQUE draft and version) is
    written and marked sent before the channel is called; a later attempt whose outcome is
    unknown looks the reply up on the channel before posting again."""

    def __init__(
        self,
        database: Database,
        publishers: dict[str, Publisher],
        outbound: Sequence[str] = (),
    ) -> None:
        self.database = database
        self.publishers = publishers
        self.outbound = tuple(outbound)

    def _publisher(self, channel: str, account_id: int | None) -> Publisher:
        """The post's channel account's publisher (its channel's registered class, built
        with the account); one given to the worker for the channel; else the local outbox."""
        if account_id is not None:
            with self.database.engine.connect() as connection:
                account = channels.by_id(connection, account_id)
            found = publisher_class(account.channel)
            if found is not None:
                publisher: Publisher = found(account)
                return publisher
        return self.publishers.get(channel) or self.publishers["outbox"]

    @activity.defn(name="publish_reply")
    def publish_reply(self, job: PublishJob) -> Recorded:
        """Claim the publication (`pending`), mark it `sent` as the request leaves, then
        `confirmed` with the platform's id, or `failed` with its reason. `attempts` counts
        the requests that left: when one did and its outcome is unknown, the reply is looked
        for on the platform before it is posted again."""
        key = f"draft-{job.draft_id}-v{job.version}"
        which = {"b_draft_id": job.draft_id, "b_version": job.version}
        with self.database.write() as connection:
            row = _version_row(connection, _PUBLISHING, job.draft_id, job.version)
            if row.transitions != job.expected:
                # Published by an earlier attempt, or the draft moved on (say, a withdrawal
                # the workflow has not heard of yet): nothing is posted.
                return _not_now(connection, job)
            requested_at = row.requested_at
            if row.attempts is None:
                now = requested_at = utcnow()
                connection.execute(
                    _CLAIM,
                    {
                        "draft_id": job.draft_id,
                        "version": job.version,
                        "channel": str(row.channel),
                        "status": "pending",
                        "requested_by": job.actor,
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
        reply = Reply(
            key=key,
            channel=str(row.channel),
            in_reply_to=row.external_id,
            body=row.body,
            requested_at=requested_at,
        )
        publisher = self._publisher(reply.channel, row.account_id)
        with self.database.write() as connection:
            connection.execute(_SENDING, {**which, "now": utcnow()})
        try:
            with _heartbeats.during():
                posted = (publisher.lookup(reply) if row.attempts else None) or publisher.post(
                    reply
                )
        except PublishRefused as refused:
            return self._refused(job, row, reply.channel, str(refused))
        except RateLimited as limited:
            raise ApplicationError(
                f"{limited}; trying again in {limited.retry_after}",
                type="RateLimited",
                next_retry_delay=limited.retry_after,
            ) from limited
        with self.database.write() as connection:
            now = utcnow()
            connection.execute(
                _CONFIRM,
                {**which, "now": now, "external_id": posted.external_id, "url": posted.url},
            )
            # No compare here: the check above claimed the draft for this publication (the
            # workflow holds its lock until this activity ends), and the post is out.
            _update_draft(connection, job.draft_id, status="published", stage=None)
            connection.execute(_ANSWERED, {"post_id": row.post_id, "now": now})
            audit.append(
                connection,
                audit.NewEvent(
                    actor=job.actor,
                    role="publisher",
                    action="draft.published",
                    payload={"channel": reply.channel, "external_id": posted.external_id},
                    draft_id=job.draft_id,
                    version=job.version,
                    content_sha256=row.content_sha256,
                    event_key=job.event_key,
                ),
            )
            deliveries = notifications.notify(
                connection,
                event="published",
                recipients=[row.author],
                message=f"Your reply (draft {job.draft_id}) is posted on {reply.channel}.",
                event_key=job.event_key,
                draft_id=job.draft_id,
                post_id=row.post_id,
                outbound=self.outbound,
            )
        return Recorded(status=APPLIED, deliveries=deliveries)

    def _refused(self, job: PublishJob, row: Any, channel: str, reason: str) -> Recorded:
        """The channel refused the reply: the publication failed with the reason, the draft
        is `publish_failed`, and its author and the publishers are told."""
        with self.database.write() as connection:
            now = utcnow()
            connection.execute(
                _FAILED,
                {"b_draft_id": job.draft_id, "b_version": job.version, "now": now, "error": reason},
            )
            _update_draft(connection, job.draft_id, status="publish_failed", stage=None)
            audit.append(
                connection,
                audit.NewEvent(
                    actor=job.actor,
                    role="publisher",
                    action="draft.publish_failed",
                    payload={"channel": channel, "reason": reason},
                    draft_id=job.draft_id,
                    version=job.version,
                    content_sha256=row.content_sha256,
                    event_key=job.event_key,
                ),
            )
            publishers = notifications.holders(connection, "publisher")
            deliveries = notifications.notify(
                connection,
                event="publish_failed",
                recipients=[row.author, *(p for p in publishers if p != row.author)],
                message=f"Draft {job.draft_id} could not be posted on {channel}: {reason}",
                event_key=job.event_key,
                draft_id=job.draft_id,
                post_id=row.post_id,
                outbound=self.outbound,
            )
        return Recorded(status=APPLIED, deliveries=deliveries, failure=reason)


class PollActivities:
    """Bringing a Mastodon account's mentions in as posts (`workflows.polling`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @activity.defn(name="poll_mentions")
    def poll_mentions(self, job: PollJob) -> Polled:
        """Store the mentions after `since_id`, a page at a time, and say how far it got.
        Retried from the same `since_id`, it finds the posts it stored already known."""
        with self.database.engine.connect() as connection:
            account = channels.by_id(connection, job.account_id)
        since, stored = job.since_id, 0
        for found, last in mastodon.mentions(account, job.since_id):
            with self.database.write_session() as session:
                for post in found:
                    try:
                        data = PostCreate.model_validate(vars(post))
                    except ValidationError as exc:
                        log.warning(
                            "mention %s is not a post we can take: %s", post.external_id, exc
                        )
                        continue
                    _, created = posts.ingest_from(session, data, account, via="poller")
                    stored += created
            since = last
        return Polled(since_id=since, stored=stored)


class NotifyActivities:
    """Sends notifications outside the app: a JSON webhook signed with HMAC-SHA256
    (`X-Countersign-Signature: sha256=<hex>` over the body) and e-mail over SMTP.

    A delivery is marked sent once the receiver accepted it, so a retry after that sends
    nothing; each carries its id (`X-Countersign-Delivery`, the e-mail's Message-ID) for a
    receiver to drop the rare repeat of a send whose answer was lost. Failures raise, and
    Temporal retries with backoff; the last attempt marks the delivery failed."""

    def __init__(
        self,
        database: Database,
        *,
        webhook_url: str = "",
        webhook_secret: str = "",
        smtp_host: str = "",
        smtp_port: int = 25,
        smtp_from: str = "countersign@localhost",
    ) -> None:
        self.database = database
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.smtp_host, self.smtp_port, self.smtp_from = smtp_host, smtp_port, smtp_from

    @activity.defn(name="deliver_notification")
    def deliver_notification(self, job: DeliveryJob) -> str:
        with self.database.engine.connect() as connection:
            row = connection.execute(_DELIVERY, {"id": job.delivery_id}).first()
        if row is None:
            raise _not_found(f"no notification delivery {job.delivery_id}")
        if row.status != "pending":
            return str(row.status)
        try:
            if row.channel == WEBHOOK:
                self._post(row)
            elif row.channel == EMAIL:
                self._mail(row)
            else:
                raise ValueError(f"no such notification channel {row.channel!r}")
        except Exception as exc:
            info = activity.info()
            last = (
                info.retry_policy is not None
                and info.attempt >= info.retry_policy.maximum_attempts > 0
            )
            self._mark(job.delivery_id, "failed" if last else "pending", error=str(exc)[:500])
            if last:
                return "failed"
            raise
        self._mark(job.delivery_id, "sent")
        return "sent"

    def _mark(self, delivery_id: int, status: str, error: str | None = None) -> None:
        with self.database.write() as connection:
            connection.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == "pending")
                .values(
                    status=status,
                    attempts=DELIVERIES.c.attempts + 1,
                    last_error=error,
                    sent_at=utcnow() if status == "sent" else None,
                )
            )

    def _post(self, row: Any) -> None:
        if not self.webhook_url:
            raise ValueError("no webhook URL is configured (COUNTERSIGN_NOTIFY_WEBHOOK_URL)")
        body = json.dumps(
            {
                "delivery_id": row.id,
                "event": row.event,
                "recipient": row.recipient,
                "draft_id": row.draft_id,
                "post_id": row.post_id,
                "message": row.message,
                "at": row.created_at.isoformat(),
            },
            separators=(",", ":"),
        ).encode()
        answer = httpx.post(
            self.webhook_url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Countersign-Event": row.event,
                "X-Countersign-Delivery": str(row.id),
                "X-Countersign-Signature": sign(self.webhook_secret, body),
            },
            timeout=10,
        )
        answer.raise_for_status()

    def _mail(self, row: Any) -> None:
        if not row.email:
            raise ValueError(f"{row.recipient} has no e-mail address")
        message = EmailMessage()
        message["From"], message["To"] = self.smtp_from, row.email
        message["Subject"] = f"Countersign: {row.event.replace('_', ' ')}"
        message["Message-ID"] = f"<notification-{row.id}@countersign>"
        message.set_content(row.message)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=10) as smtp:
            smtp.send_message(message)


_DELIVERY = (
    select(
        DELIVERIES.c.id,
        DELIVERIES.c.channel,
        DELIVERIES.c.status,
        NOTIFICATIONS.c.event,
        NOTIFICATIONS.c.recipient,
        NOTIFICATIONS.c.draft_id,
        NOTIFICATIONS.c.post_id,
        NOTIFICATIONS.c.message,
        NOTIFICATIONS.c.created_at,
        USERS.c.email,
    )
    .join(NOTIFICATIONS, NOTIFICATIONS.c.id == DELIVERIES.c.notification_id)
    .outerjoin(USERS, USERS.c.username == NOTIFICATIONS.c.recipient)
    .where(DELIVERIES.c.id == bindparam("id"))
)
# The publication's statements, built once: claim, send, confirm or fail, answer the post.
_PUBLICATION = (
    PUBLICATIONS.c.draft_id == bindparam("b_draft_id"),
    PUBLICATIONS.c.version == bindparam("b_version"),
)
_CLAIM = PUBLICATIONS.insert()
_SENDING = (
    update(PUBLICATIONS)
    .where(*_PUBLICATION)
    .values(status="sent", attempts=PUBLICATIONS.c.attempts + 1, updated_at=bindparam("now"))
)
_FAILED = (
    update(PUBLICATIONS)
    .where(*_PUBLICATION)
    .values(status="failed", error=bindparam("error"), updated_at=bindparam("now"))
)
_CONFIRM = (
    update(PUBLICATIONS)
    .where(*_PUBLICATION)
    .values(
        status="confirmed",
        external_id=bindparam("external_id"),
        external_url=bindparam("url"),
        updated_at=bindparam("now"),
    )
)
_ANSWERED = (
    update(POSTS)
    .where(POSTS.c.id == bindparam("post_id"))
    .values(status="answered", updated_at=bindparam("now"))
)
