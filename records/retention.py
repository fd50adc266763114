"""Retention and legal hold: what is kept how long, what may never be erased, and the
erasure itself.

Records older than their class's retention period (settings) have their content erased by
a durable scheduled purge (`workflows.housekeeping`), unless a legal hold covers them. A
customer's erasure request erases their content at once, holds permitting
(`records.erasure`). Erasing never
removes a record or breaks the proof: a post keeps its row and its id, a draft version its
content hash, an audit event its payload digest (the Merkle tree's leaves commit to
digests, docs/audit-format.md), each with an `erased` marker.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, false, or_, select, update
from sqlalchemy.engine import Connection

from lifecycle.words import SYSTEM_ACTOR, SYSTEM_ROLE
from records import audit, locks
from records.audit_models import HoldCreate, HoldPublic, HoldScope
from records.errors import Conflict, NotFound
from records.fields import PublicationStatus
from records.tables import (
    DECISIONS,
    DRAFTS,
    EVENTS,
    HOLDS,
    NOTIFICATIONS,
    POSTS,
    PUBLICATIONS,
    VERSIONS,
)
from records.types import utcnow

ERASED = "[erased]"
# Record classes and their default periods, in days (FINRA 4511: six years).
CLASSES = ("audit", "published", "unpublished", "posts")


# --- holds ---------------------------------------------------------------------------------


def place(connection: Connection, hold: HoldCreate, *, actor: str, role: str) -> HoldPublic:
    """A new hold. It waits for an erasure or purge under way, which read the holds before
    it, and they for it (`held_now`): a hold committed while one runs would be missed."""
    locks.take(connection, locks.Turn.HOLDS, 0)
    values = hold.model_dump(exclude_none=True) | {
        "scope": str(hold.scope),
        "placed_by": actor,
        "placed_at": utcnow(),
    }
    hold_id = connection.execute(HOLDS.insert().returning(HOLDS.c.id), values).scalar_one()
    audit.append(
        connection,
        audit.NewEvent(
            actor=actor,
            role=role,
            action="hold.placed",
            payload=_described(hold_id, hold.model_dump(mode="json", exclude_none=True)),
        ),
    )
    return get(connection, int(hold_id))


def lift(connection: Connection, hold_id: int, reason: str, *, actor: str, role: str) -> HoldPublic:
    found = get(connection, hold_id)
    if found.lifted_at is not None:
        raise Conflict(f"hold {hold_id} was lifted at {found.lifted_at.isoformat()}")
    connection.execute(
        update(HOLDS)
        .where(HOLDS.c.id == hold_id)
        .values(lifted_by=actor, lifted_at=utcnow(), lift_reason=reason)
    )
    audit.append(
        connection,
        audit.NewEvent(
            actor=actor,
            role=role,
            action="hold.lifted",
            payload={"hold_id": hold_id, "reason": reason},
        ),
    )
    return get(connection, hold_id)


def get(connection: Connection, hold_id: int) -> HoldPublic:
    row = connection.execute(select(HOLDS).where(HOLDS.c.id == hold_id)).first()
    if row is None:
        raise NotFound(f"no hold with id {hold_id}")
    return HoldPublic(**row._mapping)


def listing(connection: Connection, *, active_only: bool = False) -> list[HoldPublic]:
    query = select(HOLDS).order_by(HOLDS.c.id)
    if active_only:
        query = query.where(HOLDS.c.lifted_at.is_(None))
    return [HoldPublic(**row._mapping) for row in connection.execute(query)]


def _described(hold_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"hold_id": hold_id, **fields}


@dataclass(frozen=True)
class Held:
    """What the active holds cover, as SQL conditions on drafts and on posts."""

    drafts: set[int] = field(default_factory=set)
    posts: set[int] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)
    ranges: list[tuple[datetime, datetime]] = field(default_factory=list)

    def post_free(self) -> Any:
        """Posts no hold covers."""
        clauses = [
            ~POSTS.c.id.in_(list(self.posts)) if self.posts else None,
            ~POSTS.c.author.in_(list(self.customers)) if self.customers else None,
            ~POSTS.c.id.in_(select(DRAFTS.c.post_id).where(DRAFTS.c.id.in_(list(self.drafts))))
            if self.drafts
            else None,
            *(
                ~and_(POSTS.c.received_at >= since, POSTS.c.received_at < until)
                for since, until in self.ranges
            ),
        ]
        return and_(true_(), *[c for c in clauses if c is not None])

    def draft_free(self) -> Any:
        """Drafts no hold covers (nor their post)."""
        clauses = [
            ~DRAFTS.c.id.in_(list(self.drafts)) if self.drafts else None,
            DRAFTS.c.post_id.in_(select(POSTS.c.id).where(self.post_free())),
            *(
                ~and_(DRAFTS.c.created_at >= since, DRAFTS.c.created_at < until)
                for since, until in self.ranges
            ),
        ]
        return and_(true_(), *[c for c in clauses if c is not None])


def true_() -> Any:
    return ~false()


def held_now(connection: Connection) -> Held:
    """The holds in place, and none placed until the caller's transaction ends: for an
    erasure or a purge, which take turns with each other too (each erases posts, versions
    and events in an order of its own: side by side, they could wait for each other).
    Erasures are rare and short; a hold placed during the daily purge waits for it."""
    locks.take(connection, locks.Turn.HOLDS, 0)
    held = Held()
    for hold in listing(connection, active_only=True):
        if hold.scope == HoldScope.draft and hold.draft_id:
            held.drafts.add(hold.draft_id)
        elif hold.scope == HoldScope.post and hold.post_id:
            held.posts.add(hold.post_id)
        elif hold.scope == HoldScope.customer and hold.customer:
            held.customers.add(hold.customer)
        elif hold.scope == HoldScope.range and hold.since and hold.until:
            held.ranges.append((hold.since, hold.until))
    return held


# --- erasing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    posts: int = 0
    versions: int = 0
    events: int = 0
    # A customer's erasure's (a purge's are none): their open drafts withdrawn (their
    # ids, for their workflows to be told), and their posts still waiting dismissed.
    withdrawn: tuple[int, ...] = ()
    dismissed: int = 0

    def __add__(self, other: Erased) -> Erased:
        mine, theirs = dataclasses.astuple(self), dataclasses.astuple(other)
        return Erased(*(a + b for a, b in zip(mine, theirs, strict=True)))


def purge(connection: Connection, days: Mapping[str, int], now: datetime | None = None) -> Erased:
    """Erase the content of every record older than its class's retention period that no
    hold covers; what was erased."""
    now = now or utcnow()
    held = held_now(connection)
    published = select(PUBLICATIONS.c.draft_id).where(
        PUBLICATIONS.c.status == PublicationStatus.confirmed
    )
    old_unpublished = and_(
        DRAFTS.c.created_at < now - timedelta(days=days["unpublished"]),
        ~DRAFTS.c.id.in_(published),
    )
    old_published = and_(
        DRAFTS.c.created_at < now - timedelta(days=days["published"]),
        DRAFTS.c.id.in_(published),
    )
    drafts = select(DRAFTS.c.id).where(or_(old_unpublished, old_published), held.draft_free())
    # A post outlives its replies' retention: it goes once none of its drafts is kept.
    kept = select(DRAFTS.c.post_id).where(~DRAFTS.c.id.in_(drafts) | ~held.draft_free())
    posts = select(POSTS.c.id).where(
        POSTS.c.received_at < now - timedelta(days=days["posts"]),
        ~POSTS.c.id.in_(kept),
        held.post_free(),
    )
    # The posts first, then their drafts, as every writer of both takes them.
    answered = select(DRAFTS.c.post_id).where(DRAFTS.c.id.in_(drafts))
    locks.rows(connection, POSTS, POSTS.c.id.in_(answered) | POSTS.c.id.in_(posts))
    erased = erase_drafts(connection, drafts)
    erased += erase_posts(connection, posts)
    # Audit payloads: a draft's go with the draft; a post's with the post; the rest (users,
    # rule sets, channels) when old enough.
    gone_posts = set(connection.execute(posts).scalars())
    events = select(EVENTS.c.seq, EVENTS.c.draft_id, EVENTS.c.action, EVENTS.c.payload).where(
        EVENTS.c.at < now - timedelta(days=days["audit"]),
        EVENTS.c.erased.is_(False),
        or_(EVENTS.c.draft_id.is_(None), EVENTS.c.draft_id.in_(drafts)),
        *[~and_(EVENTS.c.at >= since, EVENTS.c.at < until) for since, until in held.ranges],
    )
    seqs = [
        row.seq
        for row in connection.execute(events)
        if row.draft_id is not None
        or not row.action.startswith("post.")
        or json.loads(row.payload).get("post_id") in gone_posts
    ]
    erased += Erased(events=audit.erase(connection, seqs))
    if erased != Erased():
        audit.append(
            connection,
            audit.NewEvent(
                actor=SYSTEM_ACTOR,
                role=SYSTEM_ROLE,
                action="retention.purged",
                payload={
                    "posts": erased.posts,
                    "versions": erased.versions,
                    "events": erased.events,
                },
            ),
        )
    return erased


def erase_drafts(connection: Connection, drafts: Any) -> Erased:
    """The drafts' words, wherever they are kept: each version's text and findings, the
    template as rendered for the customer, the reviewers' comments, and the messages that
    told people of them (a comment is quoted to the draft's author); and the key that
    sealed their texts in the workflows' histories, which leaves those unreadable
    (`records.draft_texts`). Only the drafts not erased before: a purge run again touches
    none of them again."""
    fresh = select(VERSIONS.c.draft_id).where(
        VERSIONS.c.draft_id.in_(drafts), VERSIONS.c.erased.is_(False)
    )
    connection.execute(
        update(DRAFTS)
        .where(DRAFTS.c.id.in_(fresh), DRAFTS.c.template_id.is_not(None))
        .values(template_basis=None)
    )
    connection.execute(  # every one given, erased before or not: none keeps a key after
        update(DRAFTS)
        .where(DRAFTS.c.id.in_(drafts), DRAFTS.c.text_key.is_not(None))
        .values(text_key=None)
    )
    connection.execute(
        update(DECISIONS).where(DECISIONS.c.draft_id.in_(fresh)).values(comment=None)
    )
    connection.execute(
        update(NOTIFICATIONS).where(NOTIFICATIONS.c.draft_id.in_(fresh)).values(message=ERASED)
    )
    versions = connection.execute(
        update(VERSIONS)
        .where(VERSIONS.c.draft_id.in_(drafts), VERSIONS.c.erased.is_(False))
        .values(body=ERASED, findings=[], erased=True)
    )
    return Erased(versions=int(versions.rowcount))


def erase_posts(connection: Connection, posts: Any) -> Erased:
    done = connection.execute(
        update(POSTS)
        .where(POSTS.c.id.in_(posts), POSTS.c.erased.is_(False))
        .values(
            text=ERASED, author=ERASED, author_id=None, url="https://erased.invalid/", erased=True
        )
    )
    return Erased(posts=int(done.rowcount))


def retention_days(settings_days: Mapping[str, int]) -> dict[str, int]:
    unknown = set(settings_days) - set(CLASSES)
    if unknown:
        raise ValueError(f"no record class {sorted(unknown)}; the classes are {list(CLASSES)}")
    return {**DEFAULT_DAYS, **settings_days}


DEFAULT_DAYS = {"audit": 6 * 365, "published": 6 * 365, "unpublished": 3 * 365, "posts": 3 * 365}
