"""Drafts: creation (the row, version 1 and its audit event in one transaction) and the
read model the API serves (the workflow changes drafts; see `workflows.transitions`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnElement, CursorResult, and_, bindparam, or_, tuple_, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lifecycle import rulebook
from lifecycle.words import OPEN, DraftStatus, PostStatus
from records import audit, cursor, transitions
from records.draft_models import Draft, DraftVersion
from records.draft_shapes import (
    DecisionPublic,
    DraftDetail,
    DraftPublic,
    DraftView,
    PublicationPublic,
    TimelineEntry,
    VersionPublic,
)
from records.errors import Conflict, Invalid, NotFound
from records.tables import DECISIONS, DRAFTS, EVENTS, POSTS, PUBLICATIONS, VERSIONS
from records.types import utcnow


class RenderedTemplate(Protocol):
    """A template rendered with its variables (`policies.templates.Rendered`)."""

    @property
    def template_id(self) -> str: ...
    @property
    def template_version(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def variable_spans(self) -> tuple[tuple[int, int], ...]: ...


def content_sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


class Created(NamedTuple):
    draft_id: int
    created: bool  # False: made earlier under the same creation key
    expires_at: datetime | None  # the post's reply deadline


Deadline = Callable[[datetime, str], datetime | None]


def create(
    connection: Connection,
    *,
    post_id: int,
    author: str,
    body: str,
    creation_key: str | None = None,
    template: RenderedTemplate | None = None,
    deadline: Deadline | None = None,
) -> Created:
    """A new draft, or the one made earlier under the same `creation_key`. `deadline` gives
    the post's reply deadline from its receipt time and priority (`policies.sla`).

    Core statements: this runs on every new reply, and the ORM's unit of work cost more
    than the three inserts themselves."""
    if creation_key is not None:
        earlier = connection.execute(_BY_CREATION_KEY, {"key": creation_key}).first()
        if earlier is not None:
            return Created(int(earlier.id), False, earlier.expires_at)
    post = connection.execute(_POST_STATUS, {"id": post_id}).first()
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    drafter = rulebook.Person.of(author, ())
    _enforce(rulebook.may_draft(_post_facts(connection, post), drafter))
    expires_at = deadline(post.received_at, post.priority) if deadline else None
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise Conflict(
            f"post {post_id}'s reply deadline passed at {expires_at.isoformat()}; "
            "it takes no new reply"
        )
    try:
        # The database keeps one open draft per post (`uq_drafts_open_per_post`) whoever
        # races to draft it; the savepoint lets the loser read who won.
        with connection.begin_nested():
            draft_id = int(
                connection.execute(
                    DRAFTS.insert().returning(DRAFTS.c.id),
                    {
                        "post_id": post_id,
                        "author": author,
                        "status": DraftStatus.draft.value,
                        "version": 1,
                        "review_round": 0,
                        "route": [],
                        "transitions": 0,
                        "creation_key": creation_key,
                        "expires_at": expires_at,
                        **_template_columns(template),
                        "created_at": now,
                        "updated_at": now,
                    },
                ).scalar_one()
            )
    except IntegrityError:
        if creation_key is not None:
            earlier = connection.execute(_BY_CREATION_KEY, {"key": creation_key}).first()
            if earlier is not None:  # the same request, twice at once
                return Created(int(earlier.id), False, earlier.expires_at)
        _enforce(rulebook.may_draft(_post_facts(connection, post, lost=True), drafter))
        raise
    took = post.assignee is None and _take(connection, post, author, now)
    digest = add_version(connection, draft_id, 1, body, author)
    audit.append(
        connection,
        audit.NewEvent(
            actor=author,
            role="agent",
            action="draft.created",
            # Drafting an unassigned post took it: one event tells both.
            payload={"post_id": post_id, **_template_payload(template), **_taken(took, author)},
            draft_id=draft_id,
            version=1,
            content_sha256=digest,
        ),
    )
    return Created(draft_id, True, expires_at)


def _post_facts(connection: Connection, post: Any, *, lost: bool = False) -> rulebook.Post:
    """The post as `rulebook.may_draft` reads it. Its open draft is looked up only once the
    insert `lost` to the unique index (which is the check; this names the holder). Replies
    out are counted only on an answered post: a reply on its way has an open draft (the
    index stops a second one), and a confirmed one answered the post."""
    holder = connection.execute(OPEN_DRAFT, {"id": post.id}).first() if lost else None
    answered = post.status == PostStatus.answered
    return rulebook.Post(
        id=post.id,
        status=post.status,
        assignee=post.assignee,
        open_draft=(int(holder.id), holder.author) if holder is not None else None,
        replies=transitions.other_replies(connection, post.id, draft_id=0) if answered else 0,
        replies_allowed=post.replies_allowed,
    )


def _enforce(refusal: rulebook.Refusal | None) -> None:
    if refusal is not None:
        raise Conflict(refusal.reason)


def _take(connection: Connection, post: Any, author: str, now: datetime) -> bool:
    """Drafting an unassigned post takes it: it is the drafter's from now on. Whether it
    did (a concurrent assignment wins)."""
    status = PostStatus.assigned if post.status == PostStatus.new else post.status
    changed: CursorResult[Any] = connection.execute(
        _TAKE, {"b_id": post.id, "b_assignee": author, "b_status": status, "b_now": now}
    )
    return changed.rowcount == 1


def _taken(took: bool, author: str) -> dict[str, Any]:
    return {"assigned": {"assignee": author, "previous": None}} if took else {}


def _template_columns(template: RenderedTemplate | None) -> dict[str, Any]:
    if template is None:
        return {"template_id": None, "template_version": None, "template_basis": None}
    return {
        "template_id": template.template_id,
        "template_version": template.template_version,
        "template_basis": {
            "rendered": template.body,
            "variable_spans": [list(span) for span in template.variable_spans],
        },
    }


def _template_payload(template: RenderedTemplate | None) -> dict[str, Any]:
    if template is None:
        return {}
    return {"template": {"id": template.template_id, "version": template.template_version}}


def add_version(connection: Connection, draft_id: int, version: int, body: str, author: str) -> str:
    """Store a version of a draft's text (not yet checked: no findings, no route); its
    content hash."""
    digest = content_sha256(body)
    connection.execute(
        _NEW_VERSION,
        {
            "draft_id": draft_id,
            "version": version,
            "body": body,
            "content_sha256": digest,
            "findings": [],
            "route": [],
            "created_by": author,
            "created_at": utcnow(),
        },
    )
    return digest


# --- reading ---------------------------------------------------------------------------


class Standing(NamedTuple):
    """What the API needs before it sends an action: what the rulebook asks of the draft
    (less its backup roles, which come from the SLA settings) and the post's deadline."""

    author: str
    status: str
    stage: str | None
    version: int
    route: tuple[str, ...]
    sla_breached: bool
    reviewers: dict[str, str]  # who filled which stage
    expires_at: datetime | None

    def as_rulebook(self, backup_roles: Mapping[str, str]) -> rulebook.Draft:
        """The draft as the rulebook reads it; `backup_roles` of every stage (settings),
        of which those on its route count, as the workflow's review clock has them."""
        return rulebook.Draft(
            author=self.author,
            status=self.status,
            stage=self.stage,
            version=self.version,
            route=self.route,
            reviewers=self.reviewers,
            sla_breached=self.sla_breached,
            backup_roles={s: r for s, r in backup_roles.items() if s in self.route},
        )


def standing(connection: Connection, draft_id: int) -> Standing:
    # One read: the draft row once per decision on it (or once, with no decision).
    rows = connection.execute(_STANDING, {"id": draft_id}).all()
    if not rows:
        raise NotFound(f"no draft with id {draft_id}")
    row = rows[0]
    reviewers = {r.reviewer: r.decided_stage for r in rows if r.reviewer is not None}
    return Standing(
        row.author,
        row.status,
        row.stage,
        row.version,
        tuple(row.route),
        bool(row.sla_breached),
        reviewers,
        row.expires_at,
    )


def of_view(view: DraftView) -> Standing:
    """The standing of a draft already read as a view (no second read)."""
    return Standing(
        view.author,
        view.status,
        view.stage,
        view.version,
        tuple(view.route if view.status != DraftStatus.draft else ()),
        view.sla_breached,
        {d.reviewer: d.stage for d in view.decisions},
        view.expires_at,
    )


def view(connection: Connection, draft_id: int) -> DraftView:
    """The draft with its current text, decisions and latest publication: what every action
    answers. Prepared Core statements (built once at import), no ORM objects."""
    return DraftView(**_view_fields(connection, draft_id))


def detail(connection: Connection, draft_id: int) -> DraftDetail:
    """The view plus every version and the timeline (one read, so one snapshot)."""
    bound = {"id": draft_id}
    return DraftDetail(
        **_view_fields(connection, draft_id),
        versions=[VersionPublic(**v._mapping) for v in connection.execute(_VERSIONS, bound)],
        timeline=[TimelineEntry(**e._mapping) for e in connection.execute(_TIMELINE, bound)],
    )


def _view_fields(connection: Connection, draft_id: int) -> dict[str, Any]:
    bound = {"id": draft_id}
    draft = connection.execute(_CURRENT, bound).first()
    if draft is None:
        raise NotFound(f"no draft with id {draft_id}")
    publication = connection.execute(_PUBLICATION, bound).first()
    return {
        **_public_fields(draft, draft, draft.version_route),
        "decisions": [DecisionPublic(**d._mapping) for d in connection.execute(_DECISIONS, bound)],
        "publication": PublicationPublic(**publication._mapping) if publication else None,
    }


def _columns(table: Any, names: Iterable[str]) -> list[Any]:
    return [table.c[name] for name in names]


_ID: Any = bindparam("id")
_NEW_VERSION = VERSIONS.insert()
_BY_CREATION_KEY = core_select(DRAFTS.c.id, DRAFTS.c.expires_at).where(
    DRAFTS.c.creation_key == bindparam("key")
)
# The post's row is locked until the draft is made: a dismissal at the same moment waits,
# then finds the draft (`records.dismissals`), or the draft finds the post dismissed.
_POST_STATUS = (
    core_select(
        POSTS.c.id,
        POSTS.c.status,
        POSTS.c.received_at,
        POSTS.c.priority,
        POSTS.c.assignee,
        POSTS.c.replies_allowed,
    )
    .where(POSTS.c.id == _ID)
    .with_for_update()
)
OPEN_DRAFT = core_select(DRAFTS.c.id, DRAFTS.c.author).where(
    DRAFTS.c.post_id == _ID, DRAFTS.c.status.in_([str(s) for s in OPEN])
)
# Only while it is unassigned: a concurrent assignment wins.
_TAKE = (
    update(POSTS)
    .where(POSTS.c.id == bindparam("b_id"), POSTS.c.assignee.is_(None))
    .values(
        assignee=bindparam("b_assignee"),
        status=bindparam("b_status"),
        updated_at=bindparam("b_now"),
    )
)
_STANDING = (
    core_select(
        *_columns(
            DRAFTS, ("author", "status", "stage", "version", "route", "sla_breached", "expires_at")
        ),
        DECISIONS.c.reviewer,
        DECISIONS.c.stage.label("decided_stage"),
    )
    .outerjoin(DECISIONS, DECISIONS.c.draft_id == DRAFTS.c.id)
    .where(DRAFTS.c.id == _ID)
    .order_by(DECISIONS.c.id)
)
# The draft row with its current version's text and checks (`route` is the draft's).
_CURRENT = (
    core_select(
        DRAFTS,
        *_columns(VERSIONS, ("body", "content_sha256", "findings", "ruleset_version")),
        VERSIONS.c.route.label("version_route"),
    )
    .join(
        VERSIONS,
        and_(VERSIONS.c.draft_id == DRAFTS.c.id, VERSIONS.c.version == DRAFTS.c.version),
    )
    .where(DRAFTS.c.id == _ID)
)
_VERSIONS = (
    core_select(*_columns(VERSIONS, VersionPublic.model_fields))
    .where(VERSIONS.c.draft_id == _ID)
    .order_by(VERSIONS.c.version)
)
_DECISIONS = (
    core_select(*_columns(DECISIONS, DecisionPublic.model_fields))
    .where(DECISIONS.c.draft_id == _ID)
    .order_by(DECISIONS.c.at)
)
_PUBLICATION = (
    core_select(*_columns(PUBLICATIONS, PublicationPublic.model_fields))
    .where(PUBLICATIONS.c.draft_id == _ID)
    .order_by(PUBLICATIONS.c.id.desc())
    .limit(1)
)
_TIMELINE = (
    core_select(*_columns(EVENTS, TimelineEntry.model_fields))
    .where(EVENTS.c.draft_id == _ID)
    .order_by(EVENTS.c.seq)
)


@dataclass(frozen=True, kw_only=True)
class DraftFilter:
    status: str | None = None
    stages: tuple[str, ...] | None = None
    # With `stages`: also the drafts at these stages once they are overdue (a backup role).
    overdue_stages: tuple[str, ...] = ()
    author: str | None = None
    post_id: int | None = None


def listing(
    session: Session,
    where: DraftFilter,
    *,
    after: str | None,
    limit: int,
    oldest_stage_first: bool = False,
) -> tuple[list[DraftPublic], str | None]:
    """Newest first by id; the review queue (`oldest_stage_first`) orders by time in stage."""
    query = select(Draft, DraftVersion).join(
        DraftVersion,
        and_(
            col(DraftVersion.draft_id) == col(Draft.id),
            col(DraftVersion.version) == col(Draft.version),
        ),
    )
    for column, value in (
        (Draft.status, where.status),
        (Draft.author, where.author),
        (Draft.post_id, where.post_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.stages is not None:
        at_stage: ColumnElement[bool] = col(Draft.stage).in_(where.stages)
        if where.overdue_stages:
            overdue = and_(col(Draft.stage).in_(where.overdue_stages), col(Draft.sla_breached))
            at_stage = or_(at_stage, overdue)
        query = query.where(at_stage)
    if oldest_stage_first:
        if after is not None:
            entered, draft_id = cursor.decode(after, 2)
            key = (_time(entered), _id(draft_id))
            query = query.where(tuple_(col(Draft.stage_entered_at), col(Draft.id)) > key)
        query = query.order_by(col(Draft.stage_entered_at), col(Draft.id))
    else:
        if after is not None:
            (draft_id,) = cursor.decode(after, 1)
            query = query.where(col(Draft.id) < _id(draft_id))
        query = query.order_by(col(Draft.id).desc())
    rows = session.exec(query.limit(limit + 1)).all()
    page = [DraftPublic(**_public_fields(d, v, v.route)) for d, v in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        entered = last.stage_entered_at.isoformat() if last.stage_entered_at else None
        next_cursor = cursor.encode([entered, last.id] if oldest_stage_first else [last.id])
    return page, next_cursor


def _public_fields(draft: Any, version: Any, version_route: list[str]) -> dict[str, Any]:
    """`draft` and `version` are ORM objects or rows with their columns. A draft not yet in
    review shows the route its current text would take (`version_route`)."""
    assert draft.id is not None
    return {
        "id": draft.id,
        "post_id": draft.post_id,
        "author": draft.author,
        "status": draft.status,
        "stage": draft.stage,
        "version": draft.version,
        "body": version.body,
        "content_sha256": version.content_sha256,
        "route": draft.route if draft.status != "draft" else version_route,
        "findings": version.findings,
        "ruleset_version": version.ruleset_version,
        "template_id": draft.template_id,
        "template_version": draft.template_version,
        "sla_due_at": draft.sla_due_at,
        "sla_breached": draft.sla_breached,
        "expires_at": draft.expires_at,
        "created_at": draft.created_at,
        "updated_at": draft.updated_at,
    }


def _id(value: Any) -> int:
    if not isinstance(value, int) or not 0 < value <= cursor.MAX_ID:
        raise Invalid("cursor is not one this API issued", field="cursor")
    return value


def _time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise Invalid("cursor is not one this API issued", field="cursor") from exc
    if parsed.tzinfo is None:
        raise Invalid("cursor is not one this API issued", field="cursor")
    return parsed
