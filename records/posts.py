"""Inbound posts: ingestion (deduplicated by channel and external id; each post given its
author's identity and customer and its conversation), the queue, assignment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Select, bindparam, tuple_
from sqlalchemy import select as core_select
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

    def given(self) -> tuple[str, ...]:
        """The names of the filters set, in the fields' order."""
        return tuple(field.name for field in fields(self) if getattr(self, field.name) is not None)


def queue(
    connection: Connection,
    where: QueueFilter,
    *,
    after: str | None,
    limit: int,
    order: QueueOrder = QueueOrder.arrival,
) -> tuple[list[dict[str, Any]], str | None]:
    """A keyset page, stable while posts arrive: oldest first by (received_at, id), or most
    urgent first by (respond_by, id). Each post as `PostPublic`'s fields, in its order,
    read straight from their columns (see `page_json`)."""
    due = order is QueueOrder.due
    given = where.given()
    values: dict[str, Any] = {name: getattr(where, name) for name in given}
    values["limit"] = limit + 1
    if after is not None:
        values["after_at"], values["after_id"] = cursor.time_and_id(
            after, order.value if due else None
        )
    rows = connection.execute(_statement(given, after is not None, due), values).all()
    # Not `strict`: `_statement` selects `_NAMES` and no other, and the check cost 8 µs a page.
    page = [dict(zip(_NAMES, row, strict=False)) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        if due:
            next_cursor = cursor.encode([order.value, last["respond_by"].isoformat(), last["id"]])
        else:
            next_cursor = cursor.encode([last["received_at"].isoformat(), last["id"]])
    return page, next_cursor


def page_json(items: list[dict[str, Any]], next_cursor: str | None) -> bytes:
    """A page of the queue as `Page[PostPublic]` writes it, byte for byte
    (`tests/test_posts.py` holds the two to it for any post), from the rows as read.

    Validating each row into a model and writing the models back out was most of a page's
    time over HTTP (issue 24), and checked nothing the columns' types do not: the rows come
    from the database's own typed columns, each one of `PostPublic`'s fields, read in its
    order (`_NAMES`). Written by orjson, a third of pydantic's time for the same bytes (a
    UTC time as `Z`, NaN and the infinities as `null`, as pydantic writes them)."""
    return orjson.dumps({"items": items, "next_cursor": next_cursor}, option=orjson.OPT_UTC_Z)


_NAMES = tuple(PostPublic.model_fields)


@cache  # one per shape: filters given x a cursor or not x the order
def _statement(given: tuple[str, ...], paged: bool, due: bool) -> Select[Any]:
    """The page's query for a shape, built once: its values are bound parameters."""
    at = POSTS.c.respond_by if due else POSTS.c.received_at
    query = core_select(*(POSTS.c[name] for name in _NAMES))
    for name in given:
        query = query.where(POSTS.c[name] == bindparam(name))
    if paged:
        query = query.where(
            tuple_(at, POSTS.c.id)
            > tuple_(bindparam("after_at", type_=at.type), bindparam("after_id"))
        )
    return query.order_by(at, POSTS.c.id).limit(bindparam("limit"))


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
