"""Inbound posts: ingestion (deduplicated by channel and external id; each post given its
author's identity and customer and its conversation), the queue, assignment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, create_model
from sqlalchemy import select as core_select
from sqlalchemy import tuple_
from sqlalchemy.engine import Connection
from sqlmodel import Session

from lifecycle.words import PostStatus, QueueOrder, Role
from policies.versions import RuleBook
from records import audit, cursor, notifications, transitions, users
from records.errors import Conflict, Forbidden, Invalid, NotFound
from records.fields import Priority
from records.ingest import store as ingest_batch
from records.post_models import Post, PostCreate, PostPublic
from records.tables import POSTS
from records.types import utcnow


def to_public(post: Post) -> PostPublic:
    return PostPublic.model_validate(post, from_attributes=True)


def get(session: Session, post_id: int) -> Post:
    post = session.get(Post, post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    return post


def ingest(
    session: Session,
    data: PostCreate,
    *,
    rules: RuleBook,
    actor: str,
    actor_role: str,
    account_id: int | None = None,
) -> tuple[Post, bool]:
    """Store a post unless `(channel, external_id)` is known (`records.ingest`); returns
    the post and if it is new. `account_id`: the channel account it came through (its
    replies go out by it)."""
    [stored] = ingest_batch(
        session, [data], rules=rules, actor=actor, actor_role=actor_role, account_id=account_id
    )
    return get(session, stored.post_id), stored.created


@dataclass(frozen=True, kw_only=True)
class QueueFilter:
    status: PostStatus | None = None
    channel: str | None = None
    assignee: str | None = None
    priority: Priority | None = None
    topic: str | None = None
    language: str | None = None
    public_risk: bool | None = None


def queue(
    connection: Connection,
    where: QueueFilter,
    *,
    after: str | None,
    limit: int,
    order: QueueOrder = QueueOrder.arrival,
) -> tuple[list[QueueRow], str | None]:
    """A keyset page, stable while posts arrive: oldest first by (received_at, id), or most
    urgent first by (respond_by, id), as `QueueRow`s."""
    due = order is QueueOrder.due
    at = POSTS.c.respond_by if due else POSTS.c.received_at
    query = core_select(*_SHOWN)
    for column, value in (
        (POSTS.c.status, where.status), (POSTS.c.channel, where.channel),
        (POSTS.c.assignee, where.assignee), (POSTS.c.priority, where.priority),
        (POSTS.c.topic, where.topic), (POSTS.c.language, where.language),
        (POSTS.c.public_risk, where.public_risk),
    ):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        tag = order.value if due else None
        query = query.where(tuple_(at, POSTS.c.id) > cursor.time_and_id(after, tag))
    query = query.order_by(at, POSTS.c.id).limit(limit + 1)
    rows = connection.execute(query).all()
    # As dicts: a row's mapping is read key by key through Python, a dict by pydantic-core.
    page: list[Any] = _ROWS.validate_python(
        [dict(zip(_NAMES, row, strict=True)) for row in rows[:limit]]
    )
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        if due:
            assert last.respond_by is not None  # the order's column; set on every post
            next_cursor = cursor.encode([order.value, last.respond_by.isoformat(), last.id])
        else:
            next_cursor = cursor.encode([last.received_at.isoformat(), last.id])
    return page, next_cursor


# A post as a page of the queue shows it: `PostPublic`'s fields, types and order, read
# straight from their columns. Loading ORM objects and validating them into `PostPublic`
# (a SQLModel, several times slower to build than a plain model) was most of a page's
# time over HTTP (issue 24); the answer is written the same (`tests/test_posts.py` holds
# the two to the same JSON).
QueueRow = create_model(  # type: ignore[call-overload]
    "QueueRow", **{name: (field.annotation, ...) for name, field in PostPublic.model_fields.items()}
)


def answered_by_an_index(where: QueueFilter, order: QueueOrder) -> bool:
    """Whether an index hands `queue` its page in order, a few rows read (the indexes on
    `posts`, `records.post_models`): no filter, or one filter with an index of its own in
    that order. Any other page may read and sort many rows first."""
    given = {name for name, value in vars(where).items() if value is not None}
    if order is QueueOrder.due:
        return given <= {"status"}
    return len(given) <= 1 and given <= {"status", "channel", "assignee", "priority", "topic"}


_NAMES = tuple(PostPublic.model_fields)
_SHOWN = [POSTS.c[name] for name in _NAMES]
_ROWS = TypeAdapter(list[QueueRow])


def assign(
    session: Session,
    post_id: int,
    assignee: str | None,
    *,
    actor: str,
    actor_roles: frozenset[Role],
    outbound: Sequence[str] = (),
) -> tuple[Post, list[int]]:
    """An agent takes a post for themself; a supervisor assigns it to any agent, who is
    notified. The post, and the notification deliveries to send outside the app."""
    post = get(session, post_id)
    target = assignee or actor
    supervising = Role.supervisor in actor_roles
    if target != actor and not supervising:
        raise Forbidden("only a supervisor may assign a post to someone else")
    if post.status in (PostStatus.answered, PostStatus.expired):
        raise Conflict(f"post {post_id} is {post.status} and can no longer be assigned")
    if post.assignee not in (None, target) and not supervising:
        raise Conflict(f"post {post_id} is already assigned to {post.assignee}")
    user = users.get_by_username(session, target)
    if user is None or user.disabled:
        raise Invalid(f"no active user named {target!r}", field="assignee")
    assert user.id is not None
    if Role.agent not in users.roles_of(session, user.id):
        raise Invalid(f"{target!r} is not an agent", field="assignee")
    if post.assignee == target:
        return post, []
    previous = post.assignee
    post.assignee = target
    post.status = PostStatus.assigned.value
    post.updated_at = post.assigned_at = utcnow()
    session.add(post)
    appended = audit.append(
        session,
        audit.NewEvent(
            actor=actor,
            role=Role.supervisor.value if target != actor else Role.agent.value,
            action="post.assigned",
            payload={"post_id": post_id, "assignee": target, "previous": previous},
        ),
    )
    if target == actor:
        return post, []
    deliveries = notifications.notify(
        session.connection(),
        event="assigned",
        recipients=[target],
        message=f"{actor} assigned you post {post_id} ({post.channel}, {post.priority}).",
        event_key=f"audit-{appended.seq}",
        post_id=post_id,
        outbound=outbound,
    )
    return post, deliveries


def allow_follow_up(session: Session, post_id: int, *, actor: str) -> Post:
    """A supervisor's explicit allowance of one more public reply to the post than it has
    out now (invariant 8): audited. Asked twice, it allows one."""
    post = get(session, post_id)
    out = transitions.other_replies(session.connection(), post_id, draft_id=0)
    if post.replies_allowed > out:
        return post  # a reply is already allowed and not yet out
    post.replies_allowed = out + 1
    post.updated_at = utcnow()
    session.add(post)
    audit.append(
        session,
        audit.NewEvent(
            actor=actor,
            role=Role.supervisor.value,
            action="post.follow_up_allowed",
            payload={"post_id": post_id, "replies_allowed": post.replies_allowed},
        ),
    )
    return post


def channel_and_text(connection: Connection, post_id: int) -> tuple[str, str]:
    """A post's channel and text (for policy checks), read on a Core connection."""
    row = connection.execute(
        core_select(POSTS.c.channel, POSTS.c.text).where(POSTS.c.id == post_id)
    ).first()
    if row is None:
        raise NotFound(f"no post with id {post_id}")
    return str(row.channel), str(row.text)
