"""The activities that record a draft's transitions: a move of status and stage, a
submission's policy checks, a new version of the text, a reviewer's decision.

Each commits the draft's projection and its audit event in one transaction, and is
idempotent by its event key: a retried activity finds its event and writes nothing twice.
Each write is also a compare-and-set on the draft's transition count (`workflows.recording`).
Built as methods of a class holding what they need (the database, the compiled rule set),
as in temporalio's samples, so the worker constructs them once; the workflow calls them by
method reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from temporalio import activity
from temporalio.exceptions import ApplicationError

from lifecycle.words import DraftStatus, ErrorKind, Role
from policies.budget import CheckOverBudget
from policies.engine import RuleSet, TemplateBasis
from policies.sla import ServiceLevels
from policies.versions import RuleBook
from records import (
    audit,
    dismissals,
    draft_texts,
    notifications,
    reviews,
    rulesets,
    transitions,
)
from records.db import Database
from records.draft_texts import TextField
from records.drafts import add_version
from records.types import utcnow
from workflows.contracts import (
    APPLIED,
    RECORDED,
    ActivityName,
    CheckSubmission,
    RecordDecision,
    Recorded,
    ReviewClock,
    SaveVersion,
    Standing,
    StandingOf,
    SubmitOutcome,
    Transition,
)
from workflows.recording import begin, due, not_now


class TransitionActivities:
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

    @activity.defn(name=ActivityName.record_transition)
    def record_transition(self, transition: Transition) -> Recorded:
        """Apply a draft's new status and stage and append its audit event, in one transaction."""
        with self.database.write() as connection:
            # A withdrawal may leave its post to dismiss (below): the post's row first, as
            # every writer of a draft and its post takes them.
            post_id = (
                transitions.lock_post_of(connection, transition.draft_id)
                if transition.status == DraftStatus.withdrawn
                else None
            )
            closing = transitions.NO_REVIEW_TIME if transition.stage is None else {}
            found = begin(
                connection, transition, status=transition.status, stage=transition.stage, **closing
            )
            if found is not None:
                return found
            if closing:
                reviews.close_stage(connection, transition.draft_id, transition.status)
            events = [
                audit.NewEvent(
                    actor=transition.actor,
                    role=transition.role,
                    action=transition.action,
                    payload=transition.payload,
                    draft_id=transition.draft_id,
                    version=transition.version,
                    content_sha256=transition.content_sha256,
                    event_key=transition.event_key,
                )
            ]
            if post_id is not None:  # a reply the erasure left to the publisher, withdrawn
                events += dismissals.dismiss_if_erased(connection, post_id, role=transition.role)
            audit.append_many(connection, events)
            return Recorded(status=APPLIED)

    @activity.defn(name=ActivityName.submit_checks)
    def submit_checks(self, request: CheckSubmission) -> Recorded:
        """Run the policies on the version; record findings, the route and the transition."""
        with self.database.write() as connection:
            row = transitions.version_row(
                connection, transitions.SUBMISSION, request.draft_id, request.version
            )
            if row.transitions != request.expected:
                answer = not_now(connection, request)
                if answer.status == RECORDED:  # an earlier attempt ran the checks
                    outcome = _outcome(row.findings, row.route, row.ruleset_version)
                    clock = self._clock(list(row.route), str(row.priority))
                    return replace(answer, outcome=replace(outcome, clock=clock))
                return answer
            version = rulesets.active_version(connection)
            rules = self.rules.get(version, lambda v: rulesets.source_of(connection, v))
            try:
                result = rules.check(
                    row.body, str(row.channel), post_text=row.post_text, template=_basis(row)
                )
            except CheckOverBudget as exc:  # the same text would run over again: no retry
                raise ApplicationError(
                    str(exc), type=ErrorKind.invalid, non_retryable=True
                ) from None
            clock = self._clock(result.route, str(row.priority))
            now = utcnow()
            first = result.route[0] if result.route else None
            stage_due = due(now, clock.seconds.get(first or ""))
            opened = (
                {}
                if result.blocked
                else {
                    "status": DraftStatus.in_review,
                    "stage": first,
                    "route": result.route,
                    "review_round": request.review_round,
                    "sla_due_at": stage_due,
                    "sla_breached": False,
                }
            )
            found = begin(connection, request, **opened)
            if found is not None:
                return found
            deliveries: list[int] = []
            if not result.blocked and first is not None:
                reviews.open_stage(
                    connection,
                    request.draft_id,
                    request.review_round,
                    first,
                    request.version,
                    now,
                    stage_due,
                )
                deliveries = self._notify(
                    connection,
                    event="review_requested",
                    recipients=reviews.reviewers(connection, request.draft_id, row.author, first),
                    message=f"Draft {request.draft_id} waits for your {first} review.",
                    event_key=request.event_key,
                    draft_id=request.draft_id,
                    post_id=row.post_id,
                )
            findings = [f.as_dict() for f in result.findings]
            transitions.record_checks(
                connection,
                request.draft_id,
                request.version,
                findings=findings,
                route=result.route,
                ruleset_version=result.ruleset_version,
            )
            audit.append(
                connection,
                audit.NewEvent(
                    actor=request.actor,
                    role=Role.agent,
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

    @activity.defn(name=ActivityName.read_standing)
    def read_standing(self, request: StandingOf) -> Standing:
        """The draft's lifecycle as the record has it (`LOOK_AGAIN`)."""
        with self.database.read_session() as session:
            return Standing(**transitions.standing(session.connection(), request.draft_id))

    @activity.defn(name=ActivityName.save_version)
    def save_version(self, request: SaveVersion) -> Recorded:
        """A new version of the text: a new row and content hash; earlier approvals are void."""
        with self.database.write() as connection:
            found = begin(connection, request, version=request.version)
            if found is not None:
                return found
            body = _words(connection, request.draft_id, TextField.edit, request.body) or ""
            digest = add_version(connection, request.draft_id, request.version, body, request.actor)
            audit.append(
                connection,
                audit.NewEvent(
                    actor=request.actor,
                    role=Role.agent,
                    action="draft.edited",
                    draft_id=request.draft_id,
                    version=request.version,
                    content_sha256=digest,
                    event_key=request.event_key,
                ),
            )
        return Recorded(status=APPLIED)

    @activity.defn(name=ActivityName.record_decision)
    def record_decision(self, request: RecordDecision) -> Recorded:
        """A reviewer's decision, bound to the version and its content hash, in the role
        they decided in; the next stage opens, or the draft leaves review."""
        with self.database.write() as connection:
            now = utcnow()
            next_due = due(now, request.next_stage_seconds)
            found = begin(
                connection,
                request,
                status=request.next_status,
                stage=request.next_stage,
                sla_due_at=next_due,
                sla_breached=False,
            )
            if found is not None:
                return found
            comment = _words(connection, request.draft_id, TextField.comment, request.comment)
            request = replace(request, comment=comment)
            row = transitions.version_row(
                connection, transitions.CONTENT, request.draft_id, request.version
            )
            content = row.content_sha256
            reviews.close_stage(connection, request.draft_id, request.decision, stage=request.stage)
            deliveries = self._after_decision(connection, request, row, now, next_due)
            reviews.record_decision(
                connection,
                draft_id=request.draft_id,
                version=request.version,
                review_round=request.review_round,
                stage=request.stage,
                decision=request.decision,
                reviewer=request.reviewer,
                role=request.role,
                content_sha256=content,
                comment=request.comment,
                at=now,
            )
            audit.append(
                connection,
                audit.NewEvent(
                    actor=request.reviewer,
                    role=request.role,
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
        next_due: datetime | None,
    ) -> list[int]:
        """Open the next stage, if any, and tell whom the decision concerns."""
        common = {
            "event_key": request.event_key,
            "draft_id": request.draft_id,
            "post_id": row.post_id,
        }
        author = [row.author]
        draft = f"Draft {request.draft_id}"
        if request.next_status == DraftStatus.in_review and request.next_stage:
            stage = request.next_stage
            reviews.open_stage(
                connection,
                request.draft_id,
                request.review_round,
                stage,
                request.version,
                now,
                next_due,
            )
            return self._notify(
                connection,
                event="review_requested",
                recipients=reviews.reviewers(connection, request.draft_id, row.author, stage),
                message=f"{draft} waits for your {stage} review.",
                **common,
            )
        if request.next_status == DraftStatus.approved:
            publishers = notifications.holders(connection, Role.publisher)
            return self._notify(
                connection,
                event="approved",
                recipients=[*author, *(p for p in publishers if p != row.author)],
                message=f"{draft} is approved and ready to publish.",
                **common,
            )
        if request.next_status == DraftStatus.changes_requested:
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


def _words(connection: Connection, draft_id: int, field: TextField, text: str | None) -> str | None:
    """What the person wrote, as the API sealed it for the way here (`records.draft_texts`).
    A text that does not open was erased since (a conflict, as the API answers it) or not
    sealed by the API for this draft: retrying will not change either."""
    try:
        return draft_texts.opened_from(connection, draft_id, field, text)
    except draft_texts.TextErased as error:
        raise ApplicationError(str(error), type=ErrorKind.conflict, non_retryable=True) from None
    except draft_texts.TextSealError as error:
        raise ApplicationError(str(error), type=ErrorKind.invalid, non_retryable=True) from None


def _outcome(
    findings: list[dict[str, Any]], route: list[str], ruleset: str | None
) -> SubmitOutcome:
    """The checks' answer to the workflow: whether they block, not what they found. The
    findings are the version's record in the database, where the API reads them for the
    author; they quote the text (a term, a link, its opening words), which the workflow's
    history would keep past the draft's erasure (`records.draft_texts`)."""
    blocked = any(f["severity"] == "block" for f in findings)
    return SubmitOutcome(
        blocked=blocked,
        findings=[],
        route=route,
        ruleset_version=ruleset or "",
    )


def _basis(row: Any) -> TemplateBasis | None:
    """What a template draft was rendered as (`records.draft_models.Draft.template_basis`)."""
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
