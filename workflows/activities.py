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

import functools
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, bindparam, case, select, update
from sqlalchemy.engine import Connection
from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.base import Publisher, Reply
from policies.engine import RuleBook, RuleSet, TemplateBasis
from records import audit, rulesets
from records.db import Database
from records.drafts import add_version
from records.tables import DECISIONS, DRAFTS, EVENTS, POSTS, PUBLICATIONS, VERSIONS
from records.types import utcnow
from workflows.contracts import (
    APPLIED,
    RECORDED,
    STALE,
    CheckSubmission,
    PublishJob,
    RecordDecision,
    Recorded,
    Recording,
    SaveVersion,
    Standing,
    SubmitOutcome,
    Transition,
)


class RecordActivities:
    def __init__(self, database: Database, rules: RuleSet) -> None:
        """`rules` is the shipped rule set, in force until an admin uploads another."""
        self.database = database
        self.rules = RuleBook(rules)

    @activity.defn(name="record_transition")
    def record_transition(self, transition: Transition) -> Recorded:
        """Apply a draft's new status and stage and append its audit event, in one transaction."""
        with self.database.write() as connection:
            found = _begin(connection, transition, status=transition.status, stage=transition.stage)
            if found is not None:
                return found
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
                    return replace(answer, outcome=outcome)
                return answer
            version = rulesets.active_version(connection)
            rules = self.rules.get(version, lambda v: rulesets.source_of(connection, v))
            result = rules.check(
                row.body, str(row.channel), post_text=row.post_text, template=_basis(row)
            )
            opened = (
                {}
                if result.blocked
                else {
                    "status": "in_review",
                    "stage": result.route[0],
                    "route": result.route,
                    "review_round": request.review_round,
                }
            )
            found = _begin(connection, request, **opened)
            if found is not None:
                return found
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
            return Recorded(
                status=APPLIED,
                outcome=_outcome(findings, result.route, result.ruleset_version),
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
            found = _begin(
                connection, request, status=request.next_status, stage=request.next_stage
            )
            if found is not None:
                return found
            content = _version_row(
                connection, _CONTENT, request.draft_id, request.version
            ).content_sha256
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
                    "at": utcnow(),
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
        return Recorded(status=APPLIED)


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
_CONTENT = _of_version(VERSIONS.c.content_sha256)
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
    VERSIONS.c.body,
    VERSIONS.c.content_sha256,
    POSTS.c.id.label("post_id"),
    POSTS.c.channel,
    POSTS.c.external_id,
    PUBLICATIONS.c.attempts,
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
        status=RECORDED if found else STALE, standing=_standing(connection, recording.draft_id)
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
    )


class PublishActivities:
    """Posting a reply at most once: the publication row (UNIQUE draft and version) is
    written and marked sent before the channel is called; a later attempt whose outcome is
    unknown looks the reply up on the channel before posting again."""

    def __init__(self, database: Database, publishers: dict[str, Publisher]) -> None:
        self.database = database
        self.publishers = publishers

    def _publisher(self, channel: str) -> Publisher:
        # Until a channel has its own connector, its replies go to the local outbox.
        return self.publishers.get(channel) or self.publishers["outbox"]

    @activity.defn(name="publish_reply")
    def publish_reply(self, job: PublishJob) -> Recorded:
        key = f"draft-{job.draft_id}-v{job.version}"
        which = {"b_draft_id": job.draft_id, "b_version": job.version}
        with self.database.write() as connection:
            row = _version_row(connection, _PUBLISHING, job.draft_id, job.version)
            if row.transitions != job.expected:
                # Published by an earlier attempt, or the draft moved on (say, a withdrawal
                # the workflow has not heard of yet): nothing is posted.
                return _not_now(connection, job)
            attempts = row.attempts
            now = utcnow()
            if attempts is None:
                connection.execute(
                    _CLAIM,
                    {
                        "draft_id": job.draft_id,
                        "version": job.version,
                        "channel": str(row.channel),
                        "status": "sent",
                        "requested_by": job.actor,
                        "attempts": 1,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            else:
                connection.execute(_CLAIM_AGAIN, {**which, "now": now})
        reply = Reply(key=key, channel=str(row.channel), in_reply_to=row.external_id, body=row.body)
        publisher = self._publisher(reply.channel)
        posted = (publisher.lookup(key) if attempts else None) or publisher.post(reply)
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
        return Recorded(status=APPLIED)


# The publication's statements, built once: claim (or claim again), confirm, answer the post.
_PUBLICATION = (
    PUBLICATIONS.c.draft_id == bindparam("b_draft_id"),
    PUBLICATIONS.c.version == bindparam("b_version"),
)
_CLAIM = PUBLICATIONS.insert()
_CLAIM_AGAIN = (
    update(PUBLICATIONS)
    .where(*_PUBLICATION)
    .values(status="sent", attempts=PUBLICATIONS.c.attempts + 1, updated_at=bindparam("now"))
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
