"""A post's first response against its target (issue 23): the one place that says whether
a post's first reply met its target.

- A post's first reply is its earliest confirmed publication, kept on the post as it is
  confirmed (`posts.first_replied_at`, `records.transitions.answer_post`).
- A post *met* its target when its first reply went out by its `respond_by`; it *missed*
  when the reply came later, or when `respond_by` passed with no reply; until then it is
  *pending*. A dismissed post needs no reply and has no outcome.
- The share within target is met / (met + missed): a post still inside its target counts
  neither way, so the share of a quiet morning is not flattered by posts not yet due.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, literal, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from lifecycle.words import PostStatus
from records.tables import POSTS

FIRST_REPLY = POSTS.c.first_replied_at


class Outcome(StrEnum):
    met = "met"
    missed = "missed"
    pending = "pending"
    dismissed = "dismissed"


def outcome(now: datetime) -> ColumnElement[str]:
    """The post's `Outcome` as SQL."""
    return case(
        (POSTS.c.status == PostStatus.dismissed.value, literal(Outcome.dismissed.value)),
        (FIRST_REPLY.is_not(None) & (POSTS.c.respond_by >= FIRST_REPLY), Outcome.met.value),
        (FIRST_REPLY.is_not(None), Outcome.missed.value),
        (POSTS.c.respond_by < now, Outcome.missed.value),
        else_=Outcome.pending.value,
    )


def outcomes(
    connection: Connection,
    now: datetime,
    keys: Iterable[Any],
    where: Iterable[Any],
    joined: Any = POSTS,
    answered: Counter[tuple[Any, ...]] | None = None,
) -> dict[tuple[Any, ...], Counter[Outcome]]:
    """The posts `where` holds, counted by outcome, per value of `keys` (columns); in the
    same pass, into `answered` if given, how many of them have their first reply."""
    keys = list(keys)
    verdict = outcome(now).label("outcome")
    found: dict[tuple[Any, ...], Counter[Outcome]] = defaultdict(Counter)
    for *key, result, n, replied in connection.execute(
        select(*keys, verdict, func.count(), func.count(FIRST_REPLY)).select_from(joined)
        .where(*where).group_by(*keys, literal_column("outcome"))
    ):  # fmt: skip
        found[tuple(key)][Outcome(result)] += n
        if answered is not None:
            answered[tuple(key)] += replied
    return found


def share(counts: Mapping[Outcome, int]) -> float | None:
    """The share within target (None when no post has an outcome yet)."""
    met, missed = counts.get(Outcome.met, 0), counts.get(Outcome.missed, 0)
    return round(met / (met + missed), 4) if met + missed else None
