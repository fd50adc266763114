"""A customer's history (issue 22, item 6): every post they wrote on any channel, newest
first, each with its conversation, the replies we published to it and how long the first
took, and the drafts still open on it. A page at a time, by a keyset cursor, like the
queue."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select as core_select
from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from lifecycle.words import OPEN
from records import conversations, cursor, customers
from records.conversations import ReplyPublic
from records.post_models import Post, PostPublic
from records.tables import DRAFTS


class OpenDraft(BaseModel):
    draft_id: int
    status: str
    author: str


class HistoryItem(BaseModel):
    post: PostPublic
    replies: list[ReplyPublic]
    first_response_seconds: float | None
    open_drafts: list[OpenDraft]


def page(
    session: Session, customer_id: int, *, after: str | None, limit: int
) -> tuple[list[HistoryItem], str | None]:
    """The customer's posts newest first (by received_at, id), with what we did about each."""
    customer = customers.current(session, customer_id)
    query = select(Post).where(Post.customer_id == customer.id)
    if after is not None:
        query = query.where(tuple_(col(Post.received_at), col(Post.id)) < cursor.time_and_id(after))
    query = query.order_by(col(Post.received_at).desc(), col(Post.id).desc()).limit(limit + 1)
    rows = session.exec(query).all()
    found, more = rows[:limit], len(rows) > limit
    ids = [post.id for post in found if post.id is not None]
    replies = conversations.replies(session, ids)
    drafts = session.execute(
        core_select(DRAFTS.c.id, DRAFTS.c.post_id, DRAFTS.c.status, DRAFTS.c.author).where(
            DRAFTS.c.post_id.in_(ids), DRAFTS.c.status.in_([s.value for s in OPEN])
        )
    ).all()
    items = []
    for post in found:
        answered = [reply for reply in replies if reply.post_id == post.id]
        items.append(
            HistoryItem(
                post=PostPublic.model_validate(post, from_attributes=True),
                replies=answered,
                first_response_seconds=_seconds(post.received_at, answered),
                open_drafts=[
                    OpenDraft(draft_id=row.id, status=row.status, author=row.author)
                    for row in drafts
                    if row.post_id == post.id
                ],
            )
        )
    next_cursor = None
    if more:
        last = found[-1]
        next_cursor = cursor.encode([last.received_at.isoformat(), last.id])
    return items, next_cursor


def _seconds(received_at: datetime, replies: list[ReplyPublic]) -> float | None:
    if not replies:
        return None
    return max((replies[0].published_at - received_at).total_seconds(), 0.0)
