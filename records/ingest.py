"""Storing inbound posts, a batch at a time and set-wise (issue 22): the one place where a
post becomes a row, whether it came alone (`POST /posts`, a webhook) or in a poller's batch.

For a batch, in a handful of statements whatever its size:
- a post already stored (its channel and id; it came by another route) is not stored
  again; one first found by listening that now comes as a mention or a reply is marked as
  talking to us (audited);
- each author is an identity on its channel (by the profile's id, else the handle), made
  with a customer of its own when new, and updated from a post newer than the last;
- each post joins the conversation of the post it answers (the customer's, stored or in
  this batch, or our published reply), else its thread's root's, else a conversation
  rooted at the post it answers or at itself (`records.threads`);
- each new post is triaged by the rule set in force (`records.triaged`: priority, topic,
  language, sentiment, reach, spam, public risk, with the reasons), and a public-risk post
  alerts comms and the supervisors;
- the new posts are inserted, each with its `post.received` audit event.
Rows another writer inserted meanwhile (a unique key met: the post, the identity, the
conversation) are read back rather than failing the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from lifecycle.words import TRIAGE_ACTOR, DismissReason, PostStatus
from policies.readers import READERS
from policies.versions import RuleBook
from records import audit, bulk, dismissals, locks, routing, threads, triaged
from records.channels import Account
from records.fields import Origin
from records.post_models import PostCreate
from records.tables import CUSTOMERS, IDENTITIES, POSTS
from records.threads import Key
from records.types import utcnow


@dataclass(frozen=True)
class Stored:
    post_id: int
    created: bool


def store(
    session: Session,
    batch: Sequence[PostCreate],
    *,
    rules: RuleBook,
    actor: str,
    actor_role: str,
    account_id: int | None = None,
) -> list[Stored]:
    """Each post of `batch` stored unless known; for each, its id and whether it is new.
    `rules`: the rule sets (the one in force triages the new posts).

    Batches of one channel are stored one after the other (`records.locks`, taken before
    the first read): two routes delivering the same posts by the same authors at once
    would otherwise each read what is stored, then write over each other (an author's
    profile from an older post) or lock the same rows in orders of their own (a
    deadlock, which fails a batch)."""
    locks.take_named(session.connection(), locks.Turn.INGEST, (d.channel.value for d in batch))
    with bulk.planned_for_each_batch(session.connection()):
        return _store(
            session, batch, rules=rules, actor=actor, actor_role=actor_role,
            account_id=account_id,
        )  # fmt: skip


def _store(
    session: Session,
    batch: Sequence[PostCreate],
    *,
    rules: RuleBook,
    actor: str,
    actor_role: str,
    account_id: int | None,
) -> list[Stored]:
    connection = session.connection()
    in_force = triaged.rules_in_force(connection, rules)
    keys = [(data.channel.value, data.external_id) for data in batch]
    known = _known(connection, set(keys))
    events = _addressed_to_us(connection, batch, keys, known, actor, actor_role)
    first: dict[Key, int] = {}
    for index, key in enumerate(keys):
        if key not in known:
            first.setdefault(key, index)
    fresh = [batch[index] for index in first.values()]
    # The texts are read on another core meanwhile (policies.readers).
    readings = READERS.start(in_force, [data.text for data in fresh])
    authors = _identities(connection, fresh)
    conversations = threads.conversations(connection, fresh, [authors[_author(d)] for d in fresh])
    verdicts = triaged.triage_batch(
        connection, in_force, fresh, [authors[_author(d)][1] for d in fresh], readings
    )
    now = utcnow()
    rows = [
        {
            **data.model_dump(exclude={"author_profile", "channel", "priority", "origin"}),
            **triaged.columns(in_force, result, now),
            "channel": data.channel.value,
            "origin": data.origin.value,
            "account_id": account_id,
            "author_id": _author(data)[1],
            "identity_id": authors[_author(data)][0],
            "customer_id": authors[_author(data)][1],
            "conversation_id": conversation,
            "replies_allowed": 1,
            "erased": False,
            "created_at": now,
            "updated_at": now,
        }
        for data, conversation, result in zip(fresh, conversations, verdicts, strict=True)
    ]
    routing.place(connection, rows, in_force.response_minutes)  # its queue and due time
    inserted = bulk.insert_new(connection, POSTS, rows, ("channel", "external_id"))
    ids = {**{key: post_id for key, (post_id, _) in known.items()}, **inserted}
    ids |= {
        key: post_id for key, (post_id, _) in _known(connection, set(first) - set(inserted)).items()
    }
    for row in rows:
        key = (row["channel"], row["external_id"])
        if key in inserted:
            events.append(
                audit.NewEvent(
                    actor=actor, role=actor_role, action="post.received",
                    payload={
                        "post_id": inserted[key], "channel": row["channel"],
                        "external_id": row["external_id"], "origin": row["origin"],
                        "conversation_id": row["conversation_id"],
                        "customer_id": row["customer_id"], "priority": row["priority"],
                        "topic": row["topic"], "public_risk": row["public_risk"],
                    },
                )
            )  # fmt: skip
            if row["status"] == PostStatus.dismissed:
                events.append(dismissals.dismissed_event(
                    inserted[key], DismissReason(row["dismissed_reason"]), row["dismissed_note"],
                    actor=TRIAGE_ACTOR, role=actor_role,
                ))  # fmt: skip
    audit.append_many(session, events)
    triaged.alert_public_risk(connection, [
        (inserted[(row["channel"], row["external_id"])], row["channel"])
        for row in rows
        if row["public_risk"] and (row["channel"], row["external_id"]) in inserted
    ])  # fmt: skip
    created = {key for key in inserted}
    results = []
    for index, key in enumerate(keys):
        results.append(Stored(ids[key], created=key in created and first.get(key) == index))
    return results


def store_from(
    session: Session,
    batch: Sequence[PostCreate],
    account: Account,
    *,
    via: str,
    rules: RuleBook,
) -> list[Stored]:
    """`store` posts that came through a channel account (`via`: inbound, poller), which
    they keep: their replies go out through that account."""
    return store(
        session, batch, rules=rules, actor=f"{via}:{account.name}"[:64],
        actor_role="integration", account_id=account.id,
    )  # fmt: skip


def _author(data: PostCreate) -> Key:
    profile = data.author_profile
    return (data.channel.value, (profile.id if profile and profile.id else None) or data.author)


def _known(connection: Connection, keys: set[Key]) -> dict[Key, tuple[int, str]]:
    if not keys:
        return {}
    rows = connection.execute(
        select(POSTS.c.channel, POSTS.c.external_id, POSTS.c.id, POSTS.c.origin).where(
            bulk.among(connection, (POSTS.c.channel, POSTS.c.external_id), keys)
        )
    )
    return {(r.channel, r.external_id): (int(r.id), str(r.origin)) for r in rows}


def _addressed_to_us(
    connection: Connection,
    batch: Sequence[PostCreate],
    keys: list[Key],
    known: dict[Key, tuple[int, str]],
    actor: str,
    role: str,
) -> list[audit.NewEvent]:
    """A stored post first found by listening that comes again as a mention or a reply
    talks to us, not only about us: its origin says so from now on (audited). The posts in
    id order, as the router takes them (`records.routing.route`, `overflow`)."""
    addressed: dict[int, Origin] = {}
    for data, key in zip(batch, keys, strict=True):
        post_id, origin = known.get(key, (0, ""))
        if origin == Origin.listening and data.origin in (Origin.mention, Origin.reply):
            addressed.setdefault(post_id, data.origin)
            known[key] = (post_id, data.origin.value)
    events = []
    for post_id, now_origin in sorted(addressed.items()):
        changed = connection.execute(
            update(POSTS).where(POSTS.c.id == post_id, POSTS.c.origin == Origin.listening.value)
            .values(origin=now_origin.value, updated_at=utcnow())
        )  # fmt: skip
        if changed.rowcount == 1:  # not if another writer marked it first: once
            events.append(
                audit.NewEvent(actor=actor, role=role, action="post.addressed_to_us",
                               payload={"post_id": post_id, "origin": now_origin.value})
            )  # fmt: skip
    return events


def _identities(connection: Connection, fresh: list[PostCreate]) -> dict[Key, tuple[int, int]]:
    """(identity id, customer id) for each author of `fresh`: found, or made with a
    customer of its own; each updated from its newest post in the batch when that is newer
    than what it was last seen in."""
    newest: dict[Key, PostCreate] = {}
    for data in fresh:
        key = _author(data)
        if key not in newest or data.received_at > newest[key].received_at:
            newest[key] = data
    if not newest:
        return {}
    found = _found_identities(connection, set(newest))
    _adopt_by_handle(connection, [newest[key] for key in newest if key not in found], found)
    missing = [key for key in newest if key not in found]
    if missing:
        now = utcnow()
        customers = bulk.insert_ids(
            connection, CUSTOMERS,
            [{"display_name": _name(newest[key]), "created_at": now, "updated_at": now}
             for key in missing],
        )  # fmt: skip
        customer_of = dict(zip(missing, customers, strict=True))
        rows = [
            {"customer_id": customer, "channel": key[0], "author_id": key[1],
             **_profile(newest[key]), "created_at": now, "updated_at": now}
            for key, customer in customer_of.items()
        ]  # fmt: skip
        made = bulk.insert_new(connection, IDENTITIES, rows, ("channel", "author_id"))
        lost = {key: customer for key, customer in customer_of.items() if key not in made}
        if lost:  # another writer made these identities first: their customers are unused
            connection.execute(delete(CUSTOMERS).where(CUSTOMERS.c.id.in_(lost.values())))
            found |= _found_identities(connection, set(lost))
        # Those made here are known without a second read (seen in their newest post).
        found |= {
            key: (identity, customer_of[key], newest[key].received_at)
            for key, identity in made.items()
        }
    # One row per identity: an author named by handle and by platform id in one batch is
    # one identity once adopted (`_adopt_by_handle`), updated from the newer of the two.
    stale_by_id: dict[int, dict[str, Any]] = {}
    for key, data in sorted(newest.items(), key=lambda item: item[1].received_at):
        if key not in missing and data.received_at >= found[key][2]:
            stale_by_id[found[key][0]] = {"id": found[key][0], **_profile(data)}
    stale = list(stale_by_id.values())
    if stale:
        bulk.update(
            connection, IDENTITIES, stale,
            values=lambda new: {
                "handle": new.c.handle, "seen_at": new.c.seen_at,
                # A profile field a post does not give keeps what the identity had.
                **{field: func.coalesce(new.c[field], IDENTITIES.c[field]) for field in _OPTIONAL},
            },
            # Never from a post older than the one the identity was last updated from.
            only_if=lambda new: IDENTITIES.c.seen_at <= new.c.seen_at,
        )  # fmt: skip
    return {key: (identity, customer) for key, (identity, customer, _) in found.items()}


def _adopt_by_handle(
    connection: Connection, unknown: list[PostCreate], found: dict[Key, Any]
) -> None:
    """An author first known by their handle alone (a post typed in, or stored before
    connectors gave platform ids) is the same identity when a connector names their
    platform id: that identity takes the id, rather than a second customer being made."""
    by_handle = {
        (d.channel.value, d.author): _author(d)
        for d in unknown
        if d.author_profile is not None and d.author_profile.id
    }
    if not by_handle:
        return
    rows = connection.execute(
        select(IDENTITIES.c.id, IDENTITIES.c.channel, IDENTITIES.c.author_id).where(
            bulk.among(connection, (IDENTITIES.c.channel, IDENTITIES.c.author_id), set(by_handle)),
            IDENTITIES.c.author_id == IDENTITIES.c.handle,
        )
    ).all()
    for row in rows:
        key = by_handle[(row.channel, row.author_id)]
        connection.execute(
            update(IDENTITIES).where(IDENTITIES.c.id == row.id).values(author_id=key[1])
        )
        # Not an erased post: it keeps no platform id (`records.erasure`).
        theirs = (POSTS.c.identity_id == row.id, POSTS.c.erased.is_(False))
        locks.rows(connection, POSTS, *theirs)
        connection.execute(update(POSTS).where(*theirs).values(author_id=key[1]))
    if rows:
        found |= _found_identities(connection, set(by_handle.values()))


_OPTIONAL = ("display_name", "followers", "verified", "profile_url", "language")


def _profile(data: PostCreate) -> dict[str, Any]:
    profile = data.author_profile
    values = {field: getattr(profile, field) if profile else None for field in _OPTIONAL}
    return {"handle": data.author, "seen_at": data.received_at, **values}


def _name(data: PostCreate) -> str:
    profile = data.author_profile
    return (profile.display_name if profile else None) or data.author


def _found_identities(
    connection: Connection, keys: set[Key]
) -> dict[Key, tuple[int, int, datetime]]:
    rows = connection.execute(
        select(IDENTITIES.c.id, IDENTITIES.c.customer_id, IDENTITIES.c.channel,
               IDENTITIES.c.author_id, IDENTITIES.c.seen_at)
        .where(bulk.among(connection, (IDENTITIES.c.channel, IDENTITIES.c.author_id), keys))
    )  # fmt: skip
    return {(r.channel, r.author_id): (int(r.id), int(r.customer_id), r.seen_at) for r in rows}
