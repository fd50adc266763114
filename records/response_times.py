"""A post's first response against its target (issue 23): the one place that says when a
post was first answered and whether that met its target.

- A post's first reply is its earliest confirmed publication (`first_replies`).
- A post *met* its target when its first reply went out by its `respond_by`; it *missed*
  when the reply came later, or when `respond_by` passed with no reply; until then it is
  *pending*. A dismissed post needs no reply and has no outcome.
- The share within target is met / (met + missed): a post still inside its target counts
  neither way, so the share of a quiet morning is not flattered by posts not yet due.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.sql.expression import ColumnElement

from lifecycle.words import PostStatus
from records.fields import PublicationStatus
from records.tables import DRAFTS, POSTS, PUBLICATIONS


class Outcome(StrEnum):
    met = "met"
    missed = "missed"
    pending = "pending"
    dismissed = "dismissed"


def first_replies() -> Any:
    """A subquery: (post_id, at) of each post's first confirmed reply."""
    return (
        select(DRAFTS.c.post_id, func.min(PUBLICATIONS.c.updated_at).label("at"))
        .select_from(PUBLICATIONS.join(DRAFTS, DRAFTS.c.id == PUBLICATIONS.c.draft_id))
        .where(PUBLICATIONS.c.status == PublicationStatus.confirmed.value)
        .group_by(DRAFTS.c.post_id)
        .subquery("first_reply")
    )


def outcome(first_reply_at: Any, now: datetime) -> ColumnElement[str]:
    """The post's `Outcome` as SQL, given its first reply's time (NULL: none yet)."""
    return case(
        (POSTS.c.status == PostStatus.dismissed.value, literal(Outcome.dismissed.value)),
        (first_reply_at.is_not(None) & (first_reply_at <= POSTS.c.respond_by), Outcome.met.value),
        (first_reply_at.is_not(None), Outcome.missed.value),
        (POSTS.c.respond_by < now, Outcome.missed.value),
        else_=Outcome.pending.value,
    )


def share(met: int, missed: int) -> float | None:
    """The share within target (None when no post has an outcome yet)."""
    return round(met / (met + missed), 4) if met + missed else None
