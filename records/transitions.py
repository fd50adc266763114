"""The draft's lifecycle in the database, as the workflow's activities write it: the
compare-and-set on the draft row, a version's checks, the standing a workflow adopts when
its view was out of date, and the post the draft answers. Stage reviews and decisions,
written in the same transactions, are `records.reviews`.

Every transition moves `drafts.transitions` on by one with a compare-and-set from the
count the workflow knows, so a write from an out-of-date view of the draft changes nothing
(see `workflows.recording`). The statements are Core, built once at import: they run on
every action.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, bindparam, case, func, select, update
from sqlalchemy.engine import Connection

from lifecycle.words import PostStatus
from records.errors import NotFound
from records.fields import PublicationStatus
from records.tables import (
    DECISIONS,
    DRAFTS,
    EVENTS,
    POSTS,
    PUBLICATIONS,
    VERSIONS,
)
from records.types import utcnow

# --- the draft row: compare and set -------------------------------------------------------

# What a draft leaving review (its stage none) sets besides: no review time counts on. Its
# open stage review is closed with it (`close_stage`).
NO_REVIEW_TIME: dict[str, Any] = {"sla_due_at": None, "sla_breached": False}


def update_draft(
    connection: Connection, draft_id: int, *, expected: int | None = None, **values: Any
) -> bool:
    """Move a draft's transition count on and set `values`: from `expected` only (a
    compare-and-set) when it is given. Whether the row changed."""
    now = utcnow()
    params = {"draft_id": draft_id, "now": now, **{f"new_{k}": v for k, v in values.items()}}
    if expected is not None:
        params["expected"] = expected
    if "stage" in values:
        params["entered"] = now if values["stage"] else None
    query = _draft_update(tuple(values), compare=expected is not None)
    changed: CursorResult[Any] = connection.execute(query, params)
    return changed.rowcount == 1


@functools.cache
def _draft_update(columns: tuple[str, ...], *, compare: bool) -> Any:
    """The UPDATE behind `update_draft`, built once per shape. Setting `stage` restarts the
    time in stage, but only when the stage changes."""
    values: dict[str, Any] = {
        "transitions": DRAFTS.c.transitions + 1,
        "updated_at": bindparam("now", type_=DRAFTS.c.updated_at.type),
    }
    for name in columns:
        values[name] = bindparam(f"new_{name}", type_=DRAFTS.c[name].type)
    if "stage" in columns:
        values["stage_entered_at"] = case(
            (DRAFTS.c.stage.is_not_distinct_from(values["stage"]), DRAFTS.c.stage_entered_at),
            else_=bindparam("entered", type_=DRAFTS.c.stage_entered_at.type),
        )
    query = update(DRAFTS).where(DRAFTS.c.id == bindparam("draft_id"))
    if compare:
        query = query.where(DRAFTS.c.transitions == bindparam("expected"))
    return query.values(values)


def standing(connection: Connection, draft_id: int) -> dict[str, Any]:
    """The draft's lifecycle as committed (`workflows.contracts.Standing`'s fields): the
    row, who decided which stage, the schedule, and the keys of the events its workflow
    recorded."""
    draft = connection.execute(_STANDING, {"draft_id": draft_id}).first()
    if draft is None:
        raise NotFound(f"no draft with id {draft_id}")
    bound = {"draft_id": draft_id}
    reviewers = connection.execute(_REVIEWERS, bound).all()
    events = connection.execute(_KEYED_EVENTS, bound).all()
    scheduled = [e for e in events if e.action == "draft.scheduled"]
    return {
        "status": draft.status,
        "stage": draft.stage,
        "version": draft.version,
        "review_round": draft.review_round,
        "route": list(draft.route),
        "transitions": draft.transitions,
        "reviewers": {r.reviewer: r.stage for r in reviewers},
        "scheduled_at": datetime.fromisoformat(json.loads(scheduled[-1].payload)["at"])
        if scheduled
        else None,
        "publisher": scheduled[-1].actor if scheduled else None,
        "recorded_keys": [e.event_key for e in events],
        "stage_opened_at": draft.stage_entered_at if draft.stage else None,
        "sla_breached": bool(draft.sla_breached),
    }


_STANDING = select(
    DRAFTS.c.status,
    DRAFTS.c.stage,
    DRAFTS.c.version,
    DRAFTS.c.review_round,
    DRAFTS.c.route,
    DRAFTS.c.transitions,
    DRAFTS.c.stage_entered_at,
    DRAFTS.c.sla_breached,
).where(DRAFTS.c.id == bindparam("draft_id"))
_REVIEWERS = (
    select(DECISIONS.c.reviewer, DECISIONS.c.stage)
    .where(DECISIONS.c.draft_id == bindparam("draft_id"))
    .order_by(DECISIONS.c.id)
)
_KEYED_EVENTS = (
    select(EVENTS.c.action, EVENTS.c.actor, EVENTS.c.payload, EVENTS.c.event_key)
    .where(EVENTS.c.draft_id == bindparam("draft_id"), EVENTS.c.event_key.is_not(None))
    .order_by(EVENTS.c.seq)
)


# --- a version, with its draft, post and publication ---------------------------------------


def version_row(connection: Connection, query: Any, draft_id: int, version: int) -> Any:
    """One row of a prepared query on a draft's version (`SUBMISSION`, `CONTENT`,
    `PUBLISHING`); NotFound when the version does not exist."""
    row = connection.execute(query, {"draft_id": draft_id, "version": version}).first()
    if row is None:
        raise NotFound(f"draft {draft_id} has no version {version}")
    return row


def _of_version(*columns: Any) -> Any:
    """`columns` of a draft's version, joined with its draft, its inbound post and its
    publication, if any."""
    return (
        select(*columns)
        .join(DRAFTS, DRAFTS.c.id == VERSIONS.c.draft_id)
        .join(POSTS, POSTS.c.id == DRAFTS.c.post_id)
        .outerjoin(
            PUBLICATIONS,
            (PUBLICATIONS.c.draft_id == VERSIONS.c.draft_id)
            & (PUBLICATIONS.c.version == VERSIONS.c.version),
        )
        .where(
            VERSIONS.c.draft_id == bindparam("draft_id"),
            VERSIONS.c.version == bindparam("version"),
        )
    )


# What the policy checks read of a version.
SUBMISSION = _of_version(
    DRAFTS.c.transitions,
    DRAFTS.c.author,
    POSTS.c.id.label("post_id"),
    POSTS.c.priority,
    VERSIONS.c.body,
    VERSIONS.c.content_sha256,
    VERSIONS.c.findings,
    VERSIONS.c.route,
    VERSIONS.c.ruleset_version,
    POSTS.c.channel,
    POSTS.c.text.label("post_text"),
    DRAFTS.c.template_id,
    DRAFTS.c.template_version,
    DRAFTS.c.template_basis,
)
# A version's hash, its author and its post (decisions, alarms).
CONTENT = _of_version(VERSIONS.c.content_sha256, DRAFTS.c.author, POSTS.c.id.label("post_id"))
# What publishing reads: the text, where it goes, and the state of its publication; the
# draft's row locked while the publication is claimed (an erasure withdrawing it at the same
# moment either comes first, and the claim finds the draft moved on, or finds it claimed).
PUBLISHING = _of_version(
    DRAFTS.c.transitions,
    DRAFTS.c.author,
    DRAFTS.c.status,
    DRAFTS.c.review_round,
    VERSIONS.c.body,
    VERSIONS.c.content_sha256,
    VERSIONS.c.erased,
    VERSIONS.c.route,
    POSTS.c.id.label("post_id"),
    POSTS.c.channel,
    POSTS.c.external_id,
    POSTS.c.account_id,
    POSTS.c.replies_allowed,
    POSTS.c.erased.label("post_erased"),
    PUBLICATIONS.c.attempts,
    PUBLICATIONS.c.created_at.label("requested_at"),
).with_for_update(of=DRAFTS)
# Whether the post or the version was erased since, read again as the request leaves; the
# post held until then (`workflows.publishing`).
ERASED_SINCE = _of_version(POSTS.c.erased.label("post_erased"), VERSIONS.c.erased).with_for_update(
    read=True, of=POSTS
)


def record_checks(
    connection: Connection,
    draft_id: int,
    version: int,
    *,
    findings: list[dict[str, Any]],
    route: list[str],
    ruleset_version: str,
) -> None:
    """A version's policy results: its findings, route and the rule set that gave them."""
    connection.execute(
        _CHECKED,
        {
            "b_draft_id": draft_id,
            "b_version": version,
            "new_findings": findings,
            "new_route": route,
            "new_ruleset_version": ruleset_version,
        },
    )


_CHECKED = (
    update(VERSIONS)
    .where(
        VERSIONS.c.draft_id == bindparam("b_draft_id"),
        VERSIONS.c.version == bindparam("b_version"),
    )
    .values(
        {
            name: bindparam(f"new_{name}", type_=VERSIONS.c[name].type)
            for name in ("findings", "route", "ruleset_version")
        }
    )
)


# --- the post ------------------------------------------------------------------------------


def lock_post_of(connection: Connection, draft_id: int) -> int | None:
    """Lock the draft's post until the transaction ends; its id (None: no such draft). A
    writer of a draft and its post takes the post first, as a new draft (`records.drafts`)
    and an erasure (`records.erasure`) do: taken the other way round, two could wait for
    each other."""
    post_id = connection.execute(_POST_OF_DRAFT, {"draft_id": draft_id}).scalar()
    return None if post_id is None else int(post_id)


def expire_post(connection: Connection, post_id: int, now: datetime) -> None:
    """The post's deadline passed unanswered."""
    connection.execute(_EXPIRED_POST, {"post_id": post_id, "now": now})


def answer_post(connection: Connection, post_id: int, now: datetime) -> None:
    """A reply to the post is out: it is answered, and its first reply's time is kept (a
    later reply, by a supervisor's allowance, does not move it)."""
    connection.execute(_ANSWERED, {"post_id": post_id, "now": now})


def other_replies(connection: Connection, post_id: int, draft_id: int) -> int:
    """Replies to the post, other than this draft's, that are out or on their way (a
    publication pending, sent or confirmed)."""
    count = connection.execute(_OTHER_REPLIES, {"post_id": post_id, "draft_id": draft_id})
    return int(count.scalar_one())


_POST_OF_DRAFT = (
    select(POSTS.c.id)
    .where(
        POSTS.c.id
        == select(DRAFTS.c.post_id).where(DRAFTS.c.id == bindparam("draft_id")).scalar_subquery()
    )
    .with_for_update()
)
_EXPIRED_POST = (
    update(POSTS)
    .where(POSTS.c.id == bindparam("post_id"), POSTS.c.status != PostStatus.answered)
    .values(status=PostStatus.expired, updated_at=bindparam("now"))
)
_ANSWERED = (
    update(POSTS)
    .where(POSTS.c.id == bindparam("post_id"))
    .values(
        status=PostStatus.answered,
        first_replied_at=func.coalesce(POSTS.c.first_replied_at, bindparam("now")),
        updated_at=bindparam("now"),
    )
)
_IN_FLIGHT: Iterable[str] = (
    PublicationStatus.pending,
    PublicationStatus.sent,
    PublicationStatus.confirmed,
)
_OTHER_REPLIES = (
    select(func.count())
    .select_from(PUBLICATIONS.join(DRAFTS, DRAFTS.c.id == PUBLICATIONS.c.draft_id))
    .where(
        DRAFTS.c.post_id == bindparam("post_id"),
        DRAFTS.c.id != bindparam("draft_id"),
        PUBLICATIONS.c.status.in_([str(s) for s in _IN_FLIGHT]),
    )
)
