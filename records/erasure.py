"""A customer's erasure request (GDPR article 17): their posts' text and handle, the
replies to them, the audit payloads of those, and who they were (identities, customer,
notes), unless a legal hold covers them (`records.retention`).

An erasure ends the customer's story as well as its text. Their open drafts are withdrawn
on the spot, as their workflows would withdraw them, so no later edit, review or
publication says anything more to them from our side (each of those compares the draft's
transition count, finds it moved on, and takes the withdrawal, `workflows.recording`);
their posts still waiting are dismissed (`records.dismissals`); an erased post takes no new
reply (`lifecycle.rulebook.may_draft`); and the publisher posts no erased text
(`workflows.publishing`). A draft whose publication is already claimed is left to its
publisher, which looks again before its request leaves.

Writers at the same moment, on PostgreSQL (SQLite has one writer at a time): a hold
waits for the erasure or the erasure for it (`retention.held_now`); every channel's ingest
waits (`records.locks.hold_off_ingest`: an ingest that read the author's identity before
would write their profile back); a draft begun on one of the posts either locked the post
first, and is committed by the time the erasure has it, so it is found, or waits and finds
the post erased; an edit either commits before the erasure locks its draft, and is erased
with it, or waits and finds the draft withdrawn.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, cast, delete, select, update
from sqlalchemy.engine import Connection, Row

from lifecycle.words import DraftStatus
from records import audit, dismissals, drafts, locks, reviews, transitions
from records.errors import Conflict
from records.fields import PublicationStatus
from records.retention import ERASED, Erased, Held, erase_drafts, erase_posts, held_now
from records.tables import CUSTOMERS, DRAFTS, EVENTS, IDENTITIES, NOTES, POSTS, PUBLICATIONS

WITHDRAWN = "its customer asked to be erased"


def erase_customer(connection: Connection, author: str, *, actor: str, role: str) -> Erased:
    """Erase `author`'s content and withdraw their open drafts; what was erased.

    What to erase is found in two steps, so that the long part, reading every post's audit
    events, holds off no ingest: first what the record holds up to its head as it is now;
    then, with every channel's ingest held off until the erasure commits, the posts again
    (locked, and erased), their drafts (locked, withdrawn and erased) and only the events
    since that head."""
    held = held_now(connection)
    if author in held.customers:
        raise Conflict(f"a legal hold covers {author}: nothing of theirs can be erased")
    # Read first: a post or draft seen below has every event up to it; whatever comes
    # after it has events after it (appends take turns, `records.audit`).
    head = audit.head_seq(connection)
    post_ids = _posts_of(connection, author, held)
    seqs = _events_of(connection, post_ids, _drafts_of(connection, post_ids, held), after=0)
    locks.hold_off_ingest(connection)
    post_ids = _posts_of(connection, author, held, lock=True)
    identities = set(
        connection.execute(
            select(POSTS.c.identity_id).where(
                POSTS.c.id.in_(post_ids), POSTS.c.identity_id.is_not(None)
            )
        ).scalars()
    )
    erased = erase_posts(connection, post_ids)
    draft_ids = _drafts_of(connection, post_ids, held, lock=True)
    withdrawn = _withdraw_open(connection, draft_ids)
    dismissed = dismissals.dismiss_erased(connection, post_ids, actor=actor, role=role)
    erased += erase_drafts(connection, draft_ids)
    erased += Erased(withdrawn=tuple(d.id for d in withdrawn), dismissed=len(dismissed))
    seqs = sorted(set(seqs) | set(_events_of(connection, post_ids, draft_ids, after=head)))
    _erase_people(connection, list(identities))
    erased += Erased(events=audit.erase(connection, seqs))
    audit.append_many(
        connection,
        [
            *(
                audit.NewEvent(
                    actor=actor,
                    role=role,
                    action=f"draft.{DraftStatus.withdrawn}",
                    payload={"reason": WITHDRAWN},
                    draft_id=draft.id,
                    version=draft.version,
                )
                for draft in withdrawn
            ),
            *dismissed,
            audit.NewEvent(
                actor=actor,
                role=role,
                action="customer.erased",
                # The request is on record; who it was is not (that is what was asked).
                payload=dataclasses.asdict(erased),
            ),
        ],
    )
    return erased


def _posts_of(connection: Connection, author: str, held: Held, *, lock: bool = False) -> list[int]:
    """The author's posts no hold covers (their ids: erasing a post erases the handle they
    are found by); with `lock`, locked in id order, as every writer of many posts locks
    them (`records.routing`)."""
    mine = (POSTS.c.author == author, held.post_free())
    if lock:
        return locks.rows(connection, POSTS, *mine)
    return list(connection.execute(select(POSTS.c.id).where(*mine)).scalars())


def _drafts_of(
    connection: Connection, post_ids: list[int], held: Held, *, lock: bool = False
) -> list[int]:
    """The drafts answering `post_ids` that no hold covers; with `lock`, locked in id
    order."""
    answering = (DRAFTS.c.post_id.in_(post_ids), held.draft_free())
    if lock:
        return locks.rows(connection, DRAFTS, *answering)
    return list(connection.execute(select(DRAFTS.c.id).where(*answering)).scalars())


def _withdraw_open(connection: Connection, draft_ids: list[int]) -> Sequence[Row[Any, Any]]:
    """Withdraw the open drafts among `draft_ids` whose publication is not already claimed,
    as a withdrawal by their workflow would (their open review stage closed, no review time
    left); their ids and versions."""
    claimed = select(PUBLICATIONS.c.draft_id).where(
        PUBLICATIONS.c.status.in_([PublicationStatus.pending, PublicationStatus.sent])
    )
    open_ = connection.execute(
        select(DRAFTS.c.id, DRAFTS.c.version).where(
            DRAFTS.c.id.in_(draft_ids), drafts.IS_OPEN, DRAFTS.c.id.not_in(claimed)
        )
    ).all()
    for draft in open_:
        transitions.update_draft(
            connection, draft.id, status=DraftStatus.withdrawn, stage=None,
            **transitions.NO_REVIEW_TIME,
        )  # fmt: skip
        reviews.close_stage(connection, draft.id, DraftStatus.withdrawn)
    return open_


def _events_of(
    connection: Connection, post_ids: list[int], draft_ids: list[int], *, after: int
) -> list[int]:
    """The seqs of the events after `after` that are about one of the drafts or posts."""
    posts, drafts = set(post_ids), set(draft_ids)
    return [
        row.seq
        for row in connection.execute(
            select(EVENTS.c.seq, EVENTS.c.draft_id, EVENTS.c.payload).where(
                EVENTS.c.seq > after,
                EVENTS.c.erased.is_(False),
                EVENTS.c.draft_id.in_(draft_ids) | EVENTS.c.action.like("post.%"),
            )
        )
        if row.draft_id in drafts or json.loads(row.payload).get("post_id") in posts
    ]


def _erase_people(connection: Connection, identities: list[int]) -> None:
    """Who the customer was, wherever it is kept beside the posts: each identity's handle,
    name, platform id and profile; the customers' names, CRM answer and notes."""
    if not identities:
        return
    customers = list(
        connection.execute(
            select(IDENTITIES.c.customer_id).where(IDENTITIES.c.id.in_(identities))
        ).scalars()
    )
    connection.execute(
        update(IDENTITIES)
        .where(IDENTITIES.c.id.in_(identities))
        .values(
            handle=ERASED, author_id=ERASED + ":" + cast(IDENTITIES.c.id, String),
            display_name=None, followers=None, verified=None, profile_url=None, language=None,
        )
    )  # fmt: skip
    connection.execute(
        update(CUSTOMERS)
        .where(CUSTOMERS.c.id.in_(customers))
        .values(display_name=ERASED, crm_id=None, crm_tier=None, crm_value=None)
    )
    connection.execute(delete(NOTES).where(NOTES.c.customer_id.in_(customers)))
