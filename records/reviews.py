"""A draft's reviews in the database, as the workflow's activities write them: each
stage review (opened, due, reminded, breached, closed) and each reviewer's decision, and who
may still review a stage. Apart from the draft row's compare-and-set
(`records.transitions`), which every one of these writes follows in its transaction. The
statements are Core, built once at import: they run on every action.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from lifecycle.rulebook import RecordedDecision
from records import notifications
from records.tables import DECISIONS, STAGE_REVIEWS, USER_ROLES, USERS
from records.types import utcnow

# --- decisions -----------------------------------------------------------------------------


def record_decision(connection: Connection, **decision: Any) -> None:
    """One reviewer's decision on one stage of one review round, bound to the version and
    its content hash (the unique constraint refuses a second decision of the stage), with
    the reviewer's qualification as held now (the record keeps what was true at sign-off)."""
    connection.execute(_DECIDED, {**decision, "reviewer_held": decision["reviewer"]})


# One statement: the qualification is read as the row is written, in the same snapshot.
_DECIDED = DECISIONS.insert().values(
    qualification=select(USERS.c.qualification)
    .where(USERS.c.username == bindparam("reviewer_held"))
    .scalar_subquery()
)


def decisions(connection: Connection, draft_id: int) -> list[RecordedDecision]:
    """Every decision on the draft, as the publish-time re-check reads them."""
    return [
        RecordedDecision(
            stage=row.stage,
            decision=row.decision,
            reviewer=row.reviewer,
            version=row.version,
            review_round=row.review_round,
            content_sha256=row.content_sha256,
        )
        for row in connection.execute(_DECISIONS, {"draft_id": draft_id})
    ]


_DECISIONS = select(
    DECISIONS.c.stage,
    DECISIONS.c.decision,
    DECISIONS.c.reviewer,
    DECISIONS.c.version,
    DECISIONS.c.review_round,
    DECISIONS.c.content_sha256,
).where(DECISIONS.c.draft_id == bindparam("draft_id"))


def reviewers(connection: Connection, draft_id: int, author: str, stage: str) -> list[str]:
    """Who may review `stage` of the draft: the stage's role holders, except its author and
    anyone who filled another stage of it (separation of duties). One statement: it runs
    on every step to a stage."""
    bound = {"draft_id": draft_id, "author": author, "stage": stage}
    return [row.username for row in connection.execute(_REVIEWERS, bound)]


_REVIEWERS = notifications.ENABLED_HOLDERS.where(
    USER_ROLES.c.role == bindparam("stage"),
    USERS.c.username != bindparam("author"),
    USERS.c.username.not_in(
        select(DECISIONS.c.reviewer).where(
            DECISIONS.c.draft_id == bindparam("draft_id"), DECISIONS.c.stage != bindparam("stage")
        )
    ),
)


# --- stage reviews: opened, due, reminded, breached, closed --------------------------------


def open_stage(
    connection: Connection,
    draft_id: int,
    review_round: int,
    stage: str,
    version: int,
    now: datetime,
    due: datetime | None,
) -> None:
    connection.execute(
        _NEW_STAGE,
        {
            "draft_id": draft_id,
            "review_round": review_round,
            "stage": stage,
            "version": version,
            "opened_at": now,
            "due_at": due,
            "reminded_at": None,
            "breached_at": None,
            "closed_at": None,
            "outcome": None,
        },
    )


def close_stage(
    connection: Connection, draft_id: int, outcome: str, *, stage: str | None = None
) -> None:
    """Close the draft's open stage review (there is at most one) with `outcome`."""
    params = {"b_draft_id": draft_id, "new_closed_at": utcnow(), "new_outcome": outcome}
    if stage is None:
        connection.execute(_CLOSE_OPEN, params)
    else:
        connection.execute(_CLOSE_STAGE, {**params, "b_stage": stage})


def mark_stage(
    connection: Connection,
    draft_id: int,
    review_round: int,
    stage: str | None,
    at: datetime,
    *,
    breached: bool,
) -> None:
    """Note a stage's reminder (or, `breached`, its escalation) time."""
    connection.execute(
        _BREACHED if breached else _REMINDED,
        {"b_draft_id": draft_id, "b_round": review_round, "b_stage": stage, "at": at},
    )


_NEW_STAGE = STAGE_REVIEWS.insert()
_OPEN_STAGE = (
    STAGE_REVIEWS.c.draft_id == bindparam("b_draft_id"),
    STAGE_REVIEWS.c.closed_at.is_(None),
)
_CLOSED: dict[str, Any] = {
    "closed_at": bindparam("new_closed_at"),
    "outcome": bindparam("new_outcome"),
}
_CLOSE_OPEN = update(STAGE_REVIEWS).where(*_OPEN_STAGE).values(_CLOSED)
_CLOSE_STAGE = (
    update(STAGE_REVIEWS)
    .where(*_OPEN_STAGE, STAGE_REVIEWS.c.stage == bindparam("b_stage"))
    .values(_CLOSED)
)
_THE_STAGE = (
    STAGE_REVIEWS.c.draft_id == bindparam("b_draft_id"),
    STAGE_REVIEWS.c.review_round == bindparam("b_round"),
    STAGE_REVIEWS.c.stage == bindparam("b_stage"),
)
_REMINDED = update(STAGE_REVIEWS).where(*_THE_STAGE).values(reminded_at=bindparam("at"))
_BREACHED = update(STAGE_REVIEWS).where(*_THE_STAGE).values(breached_at=bindparam("at"))
