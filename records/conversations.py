"""Conversations: a platform thread, the customer's posts and our published replies in it
(issue 22). Which conversation a new post joins is decided where posts are stored
(`records.ingest`); here they are read.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from records.customer_models import Conversation
from records.errors import NotFound
from records.fields import PublicationStatus
from records.post_models import Post, PostPublic
from records.tables import DRAFTS, POSTS, PUBLICATIONS, VERSIONS

PUBLISHED = (PublicationStatus.sent.value, PublicationStatus.confirmed.value)


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
