"""Activities: the only workflow-side code that touches the database or the outside world.

Each one commits a draft's projection and its audit event in one transaction, and is
idempotent by its event key: a retried activity finds its event and writes nothing twice.
Built as methods of a class holding what they need (the database, the compiled rule set),
as in temporalio's samples, so the worker constructs them once.
"""

from __future__ import annotations

from sqlmodel import Session, select
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
                return TransitionResult(seq=existing.seq, applied=False)
            draft = _draft(session, transition.draft_id)
            _move(draft, transition.status, transition.stage)
            session.add(draft)
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
            version = _version(session, request.draft_id, request.version)
            draft = _draft(session, request.draft_id)
            if audit.recorded(session, request.event_key) is None:
                post = session.get(Post, draft.post_id)
                assert post is not None
                result = self.rules.check(version.body, str(post.channel))
                version.findings = [f.as_dict() for f in result.findings]
                version.route = result.route
                version.ruleset_version = result.ruleset_version
                session.add(version)
                if not result.blocked:
                    _move(draft, "in_review", result.route[0])
                    draft.route, draft.review_round = result.route, request.review_round
                session.add(draft)
                audit.append(
                    session,
                    audit.NewEvent(
                        actor=request.actor,
                        role="agent",
                        action="draft.blocked" if result.blocked else "draft.submitted",
                        payload={
                            "route": result.route,
                            "ruleset_version": result.ruleset_version,
                            "findings": [f.rule_id for f in result.findings],
                        },
                        draft_id=request.draft_id,
                        version=request.version,
                        content_sha256=version.content_sha256,
                        event_key=request.event_key,
                    ),
                )
            blocked = any(f["severity"] == "block" for f in version.findings)
            return SubmitOutcome(
                blocked=blocked,
                findings=version.findings,
                route=version.route,
                ruleset_version=version.ruleset_version or "",
            )

    @activity.defn(name="save_version")
    def save_version(self, request: SaveVersion) -> str:
        """A new version of the text: a new row and content hash; earlier approvals are void."""
        digest = content_sha256(request.body)
        with self.database.write_session() as session:
            if audit.recorded(session, request.event_key) is not None:
                return digest
            draft = _draft(session, request.draft_id)
            session.add(
                DraftVersion(
                    draft_id=request.draft_id,
                    version=request.version,
                    body=request.body,
                    content_sha256=digest,
                    created_by=request.actor,
                )
            )
            draft.version, draft.updated_at = request.version, utcnow()
            session.add(draft)
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
            version = _version(session, request.draft_id, request.version)
            draft = _draft(session, request.draft_id)
            session.add(
                Decision(
                    draft_id=request.draft_id,
                    version=request.version,
                    review_round=request.review_round,
                    stage=request.stage,
                    decision=request.decision,
                    reviewer=request.reviewer,
                    comment=request.comment,
                )
            )
            _move(draft, request.next_status, request.next_stage)
            session.add(draft)
            audit.append(
                session,
                audit.NewEvent(
                    actor=request.reviewer,
                    role=request.stage,
                    action=f"draft.{request.decision}",
                    payload={"stage": request.stage, "comment": request.comment},
                    draft_id=request.draft_id,
                    version=request.version,
                    content_sha256=version.content_sha256,
                    event_key=request.event_key,
                ),
            )


def _draft(session: Session, draft_id: int) -> Draft:
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise ApplicationError(f"no draft with id {draft_id}", type="NotFound", non_retryable=True)
    return draft


def _version(session: Session, draft_id: int, version: int) -> DraftVersion:
    row = session.exec(
        select(DraftVersion).where(
            DraftVersion.draft_id == draft_id, DraftVersion.version == version
        )
    ).first()
    if row is None:
        raise ApplicationError(
            f"draft {draft_id} has no version {version}", type="NotFound", non_retryable=True
        )
    return row


def _publication(session: Session, job: PublishJob) -> Publication | None:
    return session.exec(
        select(Publication).where(
            Publication.draft_id == job.draft_id, Publication.version == job.version
        )
    ).first()


def _move(draft: Draft, status: str, stage: str | None) -> None:
    now = utcnow()
    if draft.stage != stage:
        draft.stage_entered_at = now if stage else None
    draft.status, draft.stage, draft.updated_at = status, stage, now


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
        with self.database.write_session() as session:
            if audit.recorded(session, job.event_key) is not None:
                return "published"
            draft = _draft(session, job.draft_id)
            post = session.get(Post, draft.post_id)
            assert post is not None
            version = _version(session, job.draft_id, job.version)
            publication = _publication(session, job)
            if publication is None:
                publication = Publication(
                    draft_id=job.draft_id,
                    version=job.version,
                    channel=str(post.channel),
                    requested_by=job.actor,
                )
            tried_before = publication.attempts > 0
            publication.status, publication.attempts = "sent", publication.attempts + 1
            publication.updated_at = utcnow()
            session.add(publication)
            reply = Reply(
                key=key, channel=str(post.channel), in_reply_to=post.external_id, body=version.body
            )
        publisher = self._publisher(reply.channel)
        posted = (publisher.lookup(key) if tried_before else None) or publisher.post(reply)
        with self.database.write_session() as session:
            publication = _publication(session, job)
            assert publication is not None
            publication.status, publication.updated_at = "confirmed", utcnow()
            publication.external_id, publication.external_url = posted.external_id, posted.url
            session.add(publication)
            draft = _draft(session, job.draft_id)
            _move(draft, "published", None)
            session.add(draft)
            post = session.get(Post, draft.post_id)
            assert post is not None
            post.status, post.updated_at = "answered", utcnow()
            session.add(post)
            audit.append(
                session,
                audit.NewEvent(
                    actor=job.actor,
                    role="publisher",
                    action="draft.published",
                    payload={"channel": reply.channel, "external_id": posted.external_id},
                    draft_id=job.draft_id,
                    version=job.version,
                    content_sha256=version.content_sha256,
                    event_key=job.event_key,
                ),
            )
        return "published"
