"""Drafts: creation (the row, version 1 and its audit event in one transaction)."""

from __future__ import annotations

import hashlib

from sqlmodel import Session

from records import audit, posts
from records.errors import Conflict
from records.models import Draft, DraftVersion, PostStatus


def content_sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def create(session: Session, *, post_id: int, author: str, body: str) -> Draft:
    post = posts.get(session, post_id)
    if post.status in (PostStatus.answered, PostStatus.expired):
        raise Conflict(f"post {post_id} is {post.status}; it takes no new reply")
    draft = Draft(post_id=post_id, author=author)
    session.add(draft)
    session.flush()
    assert draft.id is not None
    digest = content_sha256(body)
    session.add(
        DraftVersion(
            draft_id=draft.id, version=1, body=body, content_sha256=digest, created_by=author
        )
    )
    audit.append(
        session,
        audit.NewEvent(
            actor=author,
            role="agent",
            action="draft.created",
            payload={"post_id": post_id},
            draft_id=draft.id,
            version=1,
            content_sha256=digest,
        ),
    )
    return draft
