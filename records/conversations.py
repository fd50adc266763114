"""Conversations: a platform thread, the customer's posts and our published replies in it
(issue 22).

A post joins the conversation of the post it answers: one of the customer's stored posts,
or one of our published replies (a follow-up in a thread we answered). Failing that, the
conversation of its thread's root where the platform names one; failing that, a new
conversation rooted at the post it answers (so that post, arriving later, joins it) or at
the post itself.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from records.customer_models import Conversation
from records.errors import NotFound
from records.models import Draft, Post, PostPublic, Publication, PublicationStatus
from records.tables import DRAFTS, POSTS, PUBLICATIONS, VERSIONS

PUBLISHED = (PublicationStatus.sent.value, PublicationStatus.confirmed.value)


def for_post(
    session: Session,
    *,
    channel: str,
    external_id: str,
    in_reply_to: str | None,
    root_id: str | None,
    at: datetime,
    customer_id: int | None,
) -> Conversation:
    """The conversation a new post belongs to (see the module's docstring), its last post
    moved on to `at`."""
    conversation = None
    if in_reply_to is not None:
        conversation = _of_parent(session, channel, in_reply_to)
    root = root_id or in_reply_to or external_id
    if conversation is None:
        conversation = _by_root(session, channel, root) or _started(
            session, channel, root, at, customer_id
        )
    if at > conversation.last_post_at:
        conversation.last_post_at = at
        session.add(conversation)
    return conversation


def _of_parent(session: Session, channel: str, parent_id: str) -> Conversation | None:
    """The conversation of the post `parent_id` answers: a stored post, or a reply of ours."""
    conversation_id = session.exec(
        select(Post.conversation_id).where(Post.channel == channel, Post.external_id == parent_id)
    ).first()
    if conversation_id is None:
        conversation_id = session.exec(
            select(Post.conversation_id)
            .join(Draft, col(Draft.post_id) == col(Post.id))
            .join(Publication, col(Publication.draft_id) == col(Draft.id))
            .where(Publication.channel == channel, Publication.external_id == parent_id)
        ).first()
    return session.get(Conversation, conversation_id) if conversation_id is not None else None


def _by_root(session: Session, channel: str, root: str) -> Conversation | None:
    return session.exec(
        select(Conversation).where(Conversation.channel == channel, Conversation.root_id == root)
    ).first()


def _started(
    session: Session, channel: str, root: str, at: datetime, customer_id: int | None
) -> Conversation:
    conversation = Conversation(
        channel=channel, root_id=root, customer_id=customer_id, started_at=at, last_post_at=at
    )
    try:
        with session.begin_nested():
            session.add(conversation)
            session.flush()
    except IntegrityError:  # another ingest started it first (PostgreSQL)
        found = _by_root(session, channel, root)
        if found is None:
            raise
        return found
    return conversation


def latest_post(connection: Connection, conversation_id: int) -> int:
    """The conversation's latest post: what a new draft for it answers."""
    post_id = connection.execute(
        core_select(POSTS.c.id)
        .where(POSTS.c.conversation_id == conversation_id)
        .order_by(POSTS.c.received_at.desc(), POSTS.c.id.desc())
        .limit(1)
    ).scalar()
    if post_id is None:
        raise NotFound(f"no conversation with id {conversation_id}")
    return int(post_id)


class ReplyPublic(BaseModel):
    """One of our replies as published: what, when, in answer to which post."""

    draft_id: int
    post_id: int
    body: str
    published_at: datetime
    external_id: str | None
    url: str | None


class ConversationPublic(BaseModel):
    id: int
    channel: str
    root_id: str
    customer_id: int | None
    started_at: datetime
    last_post_at: datetime
    posts: list[PostPublic]
    replies: list[ReplyPublic]


def view(session: Session, conversation_id: int) -> ConversationPublic:
    """The customer's posts and our published replies, each in the order they happened."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"no conversation with id {conversation_id}")
    found = session.exec(
        select(Post)
        .where(Post.conversation_id == conversation_id)
        .order_by(col(Post.received_at), col(Post.id))
    ).all()
    return ConversationPublic(
        id=conversation_id,
        channel=conversation.channel,
        root_id=conversation.root_id,
        customer_id=conversation.customer_id,
        started_at=conversation.started_at,
        last_post_at=conversation.last_post_at,
        posts=[PostPublic.model_validate(p, from_attributes=True) for p in found],
        replies=replies(session, [p.id for p in found if p.id is not None]),
    )


def replies(session: Session, post_ids: list[int]) -> list[ReplyPublic]:
    """Our published replies to these posts, oldest first."""
    if not post_ids:
        return []
    rows = session.execute(
        core_select(
            DRAFTS.c.id, DRAFTS.c.post_id, VERSIONS.c.body, PUBLICATIONS.c.updated_at,
            PUBLICATIONS.c.external_id, PUBLICATIONS.c.external_url,
        )
        .join(PUBLICATIONS, PUBLICATIONS.c.draft_id == DRAFTS.c.id)
        .join(
            VERSIONS,
            (VERSIONS.c.draft_id == DRAFTS.c.id) & (VERSIONS.c.version == PUBLICATIONS.c.version),
        )
        .where(DRAFTS.c.post_id.in_(post_ids), PUBLICATIONS.c.status.in_(PUBLISHED))
        .order_by(PUBLICATIONS.c.updated_at, DRAFTS.c.id)
    ).all()  # fmt: skip
    return [
        ReplyPublic(
            draft_id=row[0], post_id=row[1], body=row[2], published_at=row[3],
            external_id=row[4], url=row[5],
        )
        for row in rows
    ]  # fmt: skip
