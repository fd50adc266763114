"""Writing drafts: a new draft (the row, version 1 and its audit event in one transaction,
taking an unassigned post) and a stored version of its text. The reads the API serves are
in `records.draft_reads`; the workflow changes drafts (`workflows.transitions`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import CursorResult, bindparam, exists, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from lifecycle import rulebook
from lifecycle.words import OPEN, DraftStatus, PostStatus
from records import audit, transitions
from records.errors import Conflict, NotFound
from records.tables import DRAFTS, POSTS, VERSIONS
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
    # The database keeps one open draft per post (`uq_drafts_open_per_post`) and one draft
    # per creation key, whoever races to make it: the insert that loses makes nothing
    # (`ON CONFLICT DO NOTHING`, no savepoint to roll back to) and reads who won.
    made = connection.execute(
        _NEW_DRAFT[connection.dialect.name],
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
    ).first()
    if made is None:
        if creation_key is not None:
            earlier = connection.execute(_BY_CREATION_KEY, {"key": creation_key}).first()
            if earlier is not None:  # the same request, twice at once
                return Created(int(earlier.id), False, earlier.expires_at)
        _enforce(rulebook.may_draft(_post_facts(connection, post, lost=True), drafter))
        raise Conflict(f"post {post_id} was being drafted at the same moment; try again")
    draft_id = int(made.id)
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
        erased=bool(post.erased),
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


_ID: Any = bindparam("id")
_NEW_VERSION = VERSIONS.insert()
_NEW_DRAFT = {
    name: dialect.insert(DRAFTS).on_conflict_do_nothing().returning(DRAFTS.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_BY_CREATION_KEY = core_select(DRAFTS.c.id, DRAFTS.c.expires_at).where(
    DRAFTS.c.creation_key == bindparam("key")
)
# The post's row is locked until the draft is made: a dismissal or an erasure at the same
# moment waits, then finds the draft (`records.dismissals`, `records.retention`), or the
# draft finds the post dismissed or erased.
_POST_STATUS = (
    core_select(
        POSTS.c.id,
        POSTS.c.status,
        POSTS.c.received_at,
        POSTS.c.priority,
        POSTS.c.assignee,
        POSTS.c.replies_allowed,
        POSTS.c.erased,
    )
    .where(POSTS.c.id == _ID)
    .with_for_update()
)
# A post's open draft, if any: who holds it (also read by `records.dismissals`).
IS_OPEN = DRAFTS.c.status.in_([str(s) for s in OPEN])
OPEN_DRAFT = core_select(DRAFTS.c.id, DRAFTS.c.author).where(DRAFTS.c.post_id == _ID, IS_OPEN)
# Whether the post of the statement's POSTS row has an open draft (in its WHERE).
HAS_OPEN_DRAFT = exists().where(DRAFTS.c.post_id == POSTS.c.id, IS_OPEN)
# Only while it is unassigned: a concurrent assignment wins.
_TAKE = (
    update(POSTS)
    .where(POSTS.c.id == bindparam("b_id"), POSTS.c.assignee.is_(None))
    .values(
        assignee=bindparam("b_assignee"),
        status=bindparam("b_status"),
        assigned_at=bindparam("b_now"),  # where its handle time starts
        updated_at=bindparam("b_now"),
    )
)
