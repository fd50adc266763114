"""Activities: the only workflow-side code that touches the database or the outside world.

Each one commits a draft's projection and its audit event in one transaction, and is
idempotent by its event key: a retried activity finds its event and writes nothing twice.
Built as methods of a class holding what they need (the database, the compiled rule set),
as in temporalio's samples, so the worker constructs them once.

They run on every action, so they write with SQLAlchemy Core statements on the tables (a
handful of statements per transaction) rather than through the ORM's unit of work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, case, select, update
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.base import Publisher, Reply
from policies.engine import RuleSet
from records import audit
from records.db import Database
from records.drafts import content_sha256
from records.models import Decision, Draft, DraftVersion, Post, Publication
from records.types import utcnow
from workflows.contracts import (
    CheckSubmission,
    PublishJob,
    RecordDecision,
    SaveVersion,
    SubmitOutcome,
    Transition,
    TransitionResult,
)


class RecordActivities:
    def __init__(self, database: Database, rules: RuleSet) -> None:
        self.database = database
        self.rules = rules

    @activity.defn(name="record_transition")
    def record_transition(self, transition: Transition) -> TransitionResult:
        """Apply a draft's new status and stage and append its audit event, in one transaction."""
        with self.database.write_session() as session:
            existing = audit.recorded(session, transition.event_key)
            if existing is not None:
                return TransitionResult(seq=existing, applied=False)
            _move(session, transition.draft_id, transition.status, transition.stage)
            event = audit.append(
                session,
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
            return TransitionResult(seq=event.seq, applied=True)

    @activity.defn(name="submit_checks")
    def submit_checks(self, request: CheckSubmission) -> SubmitOutcome:
        """Run the policies on the version; record findings, the route and the transition."""
        with self.database.write_session() as session:
            row = _version_row(
                session,
                request.draft_id,
                request.version,
                VERSIONS.c.body,
                VERSIONS.c.content_sha256,
                VERSIONS.c.findings,
                VERSIONS.c.route,
                VERSIONS.c.ruleset_version,
                POSTS.c.channel,
            )
            findings, route, ruleset = row.findings, row.route, row.ruleset_version
            if audit.recorded(session, request.event_key) is None:
                result = self.rules.check(row.body, str(row.channel))
                findings = [f.as_dict() for f in result.findings]
                route, ruleset = result.route, result.ruleset_version
                session.execute(
                    update(VERSIONS)
                    .where(
                        VERSIONS.c.draft_id == request.draft_id,
                        VERSIONS.c.version == request.version,
                    )
                    .values(findings=findings, route=route, ruleset_version=ruleset)
                )
                if not result.blocked:
                    _move(
                        session,
                        request.draft_id,
                        "in_review",
                        route[0],
                        route=route,
                        review_round=request.review_round,
                    )
                audit.append(
                    session,
                    audit.NewEvent(
                        actor=request.actor,
                        role="agent",
                        action="draft.blocked" if result.blocked else "draft.submitted",
                        payload={
                            "route": route,
                            "ruleset_version": ruleset,
                            "findings": [f.rule_id for f in result.findings],
                        },
                        draft_id=request.draft_id,
                        version=request.version,
                        content_sha256=row.content_sha256,
                        event_key=request.event_key,
                    ),
                )
            return SubmitOutcome(
                blocked=any(f["severity"] == "block" for f in findings),
                findings=findings,
                route=route,
                ruleset_version=ruleset or "",
            )

    @activity.defn(name="save_version")
    def save_version(self, request: SaveVersion) -> str:
        """A new version of the text: a new row and content hash; earlier approvals are void."""
        digest = content_sha256(request.body)
        with self.database.write_session() as session:
            if audit.recorded(session, request.event_key) is not None:
                return digest
            _update_draft(session, request.draft_id, version=request.version, updated_at=utcnow())
            session.execute(
                VERSIONS.insert(),
                {
                    "draft_id": request.draft_id,
                    "version": request.version,
                    "body": request.body,
                    "content_sha256": digest,
                    "findings": [],
                    "route": [],
                    "created_by": request.actor,
                    "created_at": utcnow(),
                },
            )
            audit.append(
                session,
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
        return digest

    @activity.defn(name="record_decision")
    def record_decision(self, request: RecordDecision) -> None:
        with self.database.write_session() as session:
            if audit.recorded(session, request.event_key) is not None:
                return
            content = _version_row(
                session, request.draft_id, request.version, VERSIONS.c.content_sha256
            ).content_sha256
            session.execute(
                DECISIONS.insert(),
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
            _move(session, request.draft_id, request.next_status, request.next_stage)
            audit.append(
                session,
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


DRAFTS: Any = Draft.__table__  # type: ignore[attr-defined]
VERSIONS: Any = DraftVersion.__table__  # type: ignore[attr-defined]
DECISIONS: Any = Decision.__table__  # type: ignore[attr-defined]
POSTS: Any = Post.__table__  # type: ignore[attr-defined]
PUBLICATIONS: Any = Publication.__table__  # type: ignore[attr-defined]


def _not_found(message: str) -> ApplicationError:
    return ApplicationError(message, type="NotFound", non_retryable=True)


def _version_row(session: Session, draft_id: int, version: int, *columns: Any) -> Any:
    """`columns` of a draft's version, joined with its draft and inbound post."""
    row = session.execute(
        select(*columns)
        .join(DRAFTS, DRAFTS.c.id == VERSIONS.c.draft_id)
        .join(POSTS, POSTS.c.id == DRAFTS.c.post_id)
        .where(VERSIONS.c.draft_id == draft_id, VERSIONS.c.version == version)
    ).first()
    if row is None:
        raise _not_found(f"draft {draft_id} has no version {version}")
    return row


def _move(session: Session, draft_id: int, status: str, stage: str | None, **more: object) -> None:
    """Set a draft's status and stage; the time in stage restarts when the stage changes."""
    now = utcnow()
    entered = case(
        (DRAFTS.c.stage.is_not_distinct_from(stage), DRAFTS.c.stage_entered_at),
        else_=now if stage else None,
    )
    _update_draft(
        session,
        draft_id,
        status=status,
        stage=stage,
        stage_entered_at=entered,
        updated_at=now,
        **more,
    )


def _update_draft(session: Session, draft_id: int, **values: object) -> None:
    changed: CursorResult[Any] = session.connection().execute(
        update(DRAFTS).where(DRAFTS.c.id == draft_id).values(**values)
    )
    if changed.rowcount != 1:
        raise _not_found(f"no draft with id {draft_id}")


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
    def publish_reply(self, job: PublishJob) -> str:
        key = f"draft-{job.draft_id}-v{job.version}"
        where = (PUBLICATIONS.c.draft_id == job.draft_id, PUBLICATIONS.c.version == job.version)
        with self.database.write_session() as session:
            if audit.recorded(session, job.event_key) is not None:
                return "published"
            row = _version_row(
                session,
                job.draft_id,
                job.version,
                VERSIONS.c.body,
                VERSIONS.c.content_sha256,
                POSTS.c.id.label("post_id"),
                POSTS.c.channel,
                POSTS.c.external_id,
            )
            attempts = session.execute(
                select(PUBLICATIONS.c.attempts).where(*where)
            ).scalar_one_or_none()
            now = utcnow()
            if attempts is None:
                session.execute(
                    PUBLICATIONS.insert(),
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
                session.execute(
                    update(PUBLICATIONS)
                    .where(*where)
                    .values(status="sent", attempts=attempts + 1, updated_at=now)
                )
        reply = Reply(key=key, channel=str(row.channel), in_reply_to=row.external_id, body=row.body)
        publisher = self._publisher(reply.channel)
        posted = (publisher.lookup(key) if attempts else None) or publisher.post(reply)
        with self.database.write_session() as session:
            now = utcnow()
            session.execute(
                update(PUBLICATIONS)
                .where(*where)
                .values(
                    status="confirmed",
                    external_id=posted.external_id,
                    external_url=posted.url,
                    updated_at=now,
                )
            )
            _move(session, job.draft_id, "published", None)
            session.execute(
                update(POSTS)
                .where(POSTS.c.id == row.post_id)
                .values(status="answered", updated_at=now)
            )
            audit.append(
                session,
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
        return "published"
