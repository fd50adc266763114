"""Reading drafts: the read model the API serves (a draft's view and detail, the listing
and its filter) and a draft's standing, what the rulebook asks of it before an action is
sent (`api.desk`). Kept apart from `records.drafts`, which writes them (a new draft and its
versions); the workflow changes drafts (`workflows.transitions`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Integer, and_, bindparam, func, or_, tuple_
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, SQLModel, col, select

from lifecycle import rulebook
from lifecycle.words import DraftStatus
from records import cursor
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
from records.errors import Invalid, NotFound
from records.tables import DECISIONS, DRAFTS, EVENTS, PUBLICATIONS, VERSIONS

M = TypeVar("M", bound=SQLModel)


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


def findings(connection: Connection, draft_id: int, version: int | None) -> list[dict[str, Any]]:
    """What the checks found in a version of the draft (None: its current one), a blocked
    submission's answer: the workflow does not carry them (`workflows.transitions._outcome`:
    they quote the text, which its history would keep past an erasure)."""
    found = connection.execute(_FINDINGS, {"id": draft_id, "version": version}).scalar()
    return list(found or [])


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
    """One statement (one snapshot on either database, one round trip on PostgreSQL): the
    draft row with its current version and latest publication, once per decision on it
    (or once, with none). A draft has one decision a stage a review round: a few rows,
    each repeating the draft's text, cost less than two more statements."""
    rows = connection.execute(_VIEW, {"id": draft_id}).all()
    if not rows:
        raise NotFound(f"no draft with id {draft_id}")
    draft = rows[0]
    return {
        **_public_fields(draft, draft, draft.version_route),
        "decisions": [d for row in rows if (d := _part(row, _DECISION)) is not None],
        "publication": _part(draft, _PUBLICATION),
    }


def _part(row: Any, part: tuple[str, type[M]]) -> M | None:
    """What `row` of a view holds under the part's prefix (a decision, the publication),
    or None where its outer join found none (its id, a primary key, is null)."""
    prefix, model = part
    if getattr(row, prefix + "id") is None:
        return None
    return model(**{f: getattr(row, prefix + f) for f in model.model_fields})


def _labelled(table: Any, part: tuple[str, type[SQLModel]]) -> list[Any]:
    """The table's id and the part's fields, each under the part's prefix."""
    prefix, model = part
    return [table.c[name].label(prefix + name) for name in ("id", *model.model_fields)]


def _columns(table: Any, names: Iterable[str]) -> list[Any]:
    return [table.c[name] for name in names]


_ID: Any = bindparam("id")
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
# A draft's view (`_view_fields`): the draft row with its current version's text and checks
# (`route` is the draft's), its latest publication, and each decision on it, oldest first;
# the publication's and decisions' columns under prefixes of their own.
_DECISION = ("decision_", DecisionPublic)
_PUBLICATION = ("publication_", PublicationPublic)
_LATEST = PUBLICATIONS.alias("latest")
_VIEW = (
    core_select(
        DRAFTS,
        *_columns(VERSIONS, ("body", "content_sha256", "findings", "ruleset_version")),
        VERSIONS.c.route.label("version_route"),
        *_labelled(PUBLICATIONS, _PUBLICATION),
        *_labelled(DECISIONS, _DECISION),
    )
    .join(
        VERSIONS,
        and_(VERSIONS.c.draft_id == DRAFTS.c.id, VERSIONS.c.version == DRAFTS.c.version),
    )
    .outerjoin(
        PUBLICATIONS,
        and_(
            PUBLICATIONS.c.draft_id == DRAFTS.c.id,
            PUBLICATIONS.c.id
            == core_select(func.max(_LATEST.c.id))
            .where(_LATEST.c.draft_id == DRAFTS.c.id)
            .scalar_subquery(),
        ),
    )
    .outerjoin(DECISIONS, DECISIONS.c.draft_id == DRAFTS.c.id)
    .where(DRAFTS.c.id == _ID)
    .order_by(DECISIONS.c.at, DECISIONS.c.id)
)
_CURRENT = core_select(DRAFTS.c.version).where(DRAFTS.c.id == _ID).scalar_subquery()
_FINDINGS = core_select(VERSIONS.c.findings).where(
    VERSIONS.c.draft_id == _ID,
    VERSIONS.c.version == func.coalesce(bindparam("version", type_=Integer), _CURRENT),
)
_VERSIONS = (
    core_select(*_columns(VERSIONS, VersionPublic.model_fields))
    .where(VERSIONS.c.draft_id == _ID)
    .order_by(VERSIONS.c.version)
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
