"""Which conversation each new post of a batch joins (`records.ingest`, issue 22, item 5).

A conversation is one identity's side of a thread. A post joins the conversation of the
post it answers when that conversation is its own author's (the customer's earlier post,
stored or in this batch, or our published reply to them), else its thread's root's, else
a conversation rooted at the post it answers or at itself. A conversation spans its posts,
from the earliest to the latest, whatever order they arrive in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, or_, select
from sqlalchemy.engine import Connection

from records import bulk
from records.post_models import PostCreate
from records.tables import CONVERSATIONS, DRAFTS, POSTS, PUBLICATIONS
from records.types import utcnow

Key = tuple[str, str]  # (channel, an external id)
Root = tuple[str, str, int]  # a conversation's key: (channel, its thread's root, identity)


def conversations(
    connection: Connection, fresh: list[PostCreate], authors: list[tuple[int, int]]
) -> list[int]:
    """The conversation of each post of `fresh` (see the module's docstring), given each
    post's (identity, customer). A conversation is one identity's side of a thread: a
    post joins its parent's only when that conversation is its own author's (the
    customer's earlier post, or our reply to them), never someone else's."""
    parents = {(d.channel.value, d.in_reply_to) for d in fresh if d.in_reply_to}
    of_parent = _parents(connection, parents)
    # A post of this batch -> its conversation (an id, or the key of one to find or make),
    # and whose side of the thread that is.
    in_batch: dict[Key, tuple[int | Root, int]] = {}
    decided: list[int | Root] = []
    for data, (identity, _) in zip(fresh, authors, strict=True):
        channel = data.channel.value
        parent = (channel, data.in_reply_to) if data.in_reply_to else None
        choice: int | Root
        if parent is not None and parent in of_parent and of_parent[parent][1] == identity:
            choice = of_parent[parent][0]
        elif parent is not None and parent in in_batch and in_batch[parent][1] == identity:
            choice = in_batch[parent][0]
        else:
            choice = (channel, data.root_id or data.in_reply_to or data.external_id, identity)
        in_batch[(channel, data.external_id)] = (choice, identity)
        decided.append(choice)
    roots = {choice for choice in decided if isinstance(choice, tuple)}
    ids = _found_roots(connection, roots)
    missing = [r for r in dict.fromkeys(decided) if isinstance(r, tuple) and r not in ids]
    made: dict[Any, int] = {}
    if missing:
        # A new conversation starts at its earliest post of the batch and its last post is
        # its latest, as the update below would make it; its customer is its identity's.
        span = _spans(decided, fresh)
        owner = {choice: customer for choice, (_, customer) in zip(decided, authors, strict=True)}
        made = bulk.insert_new(
            connection, CONVERSATIONS,
            [{"channel": root[0], "root_id": root[1], "identity_id": root[2],
              "customer_id": owner[root], "started_at": span[root][0],
              "last_post_at": span[root][1], "created_at": utcnow()} for root in missing],
            ("channel", "root_id", "identity_id"),
        )  # fmt: skip
        ids |= made
        ids |= _found_roots(connection, {root for root in missing if root not in made})
    chosen = [choice if isinstance(choice, int) else ids[choice] for choice in decided]
    # A stored conversation spans its posts: a post later than its last moves the last on;
    # one earlier than its first (a page fetched late) moves the start back.
    just_made = set(made.values())
    spans = {c: s for c, s in _spans(chosen, fresh).items() if c not in just_made}
    if spans:
        stored = CONVERSATIONS.c
        bulk.update(
            connection, CONVERSATIONS,
            [{"id": c, "started_at": first, "last_post_at": last}
             for c, (first, last) in spans.items()],
            values=lambda new: {
                "started_at": case((new.c.started_at < stored.started_at, new.c.started_at),
                                   else_=stored.started_at),
                "last_post_at": case((new.c.last_post_at > stored.last_post_at,
                                      new.c.last_post_at), else_=stored.last_post_at),
            },
            only_if=lambda new: or_(stored.last_post_at < new.c.last_post_at,
                                    stored.started_at > new.c.started_at),
        )  # fmt: skip
    return chosen


def _spans(keys: list[Any], fresh: list[PostCreate]) -> dict[Any, tuple[datetime, datetime]]:
    """The earliest and the latest post of each key's posts (`keys`: beside `fresh`)."""
    spans: dict[Any, tuple[datetime, datetime]] = {}
    for key, data in zip(keys, fresh, strict=True):
        at = data.received_at
        first, last = spans.get(key, (at, at))
        spans[key] = (min(first, at), max(last, at))
    return spans


def _parents(connection: Connection, parents: set[Key]) -> dict[Key, tuple[int, int]]:
    """The conversation of each stored post, or published reply of ours, in `parents`, and
    the identity that conversation is with."""
    if not parents:
        return {}
    found = {
        (r.channel, r.external_id): (int(r.id), int(r.identity_id))
        for r in connection.execute(
            select(
                POSTS.c.channel,
                POSTS.c.external_id,
                CONVERSATIONS.c.id,
                CONVERSATIONS.c.identity_id,
            )
            .join(CONVERSATIONS, CONVERSATIONS.c.id == POSTS.c.conversation_id)
            .where(bulk.among(connection, (POSTS.c.channel, POSTS.c.external_id), parents))
        )
    }
    rest = parents - set(found)
    if rest:
        rows = connection.execute(
            select(PUBLICATIONS.c.channel, PUBLICATIONS.c.external_id, CONVERSATIONS.c.id,
                   CONVERSATIONS.c.identity_id)
            .join(DRAFTS, DRAFTS.c.id == PUBLICATIONS.c.draft_id)
            .join(POSTS, POSTS.c.id == DRAFTS.c.post_id)
            .join(CONVERSATIONS, CONVERSATIONS.c.id == POSTS.c.conversation_id)
            .where(bulk.among(connection, (PUBLICATIONS.c.channel, PUBLICATIONS.c.external_id),
                              rest))
        )  # fmt: skip
        found |= {(r.channel, r.external_id): (int(r.id), int(r.identity_id)) for r in rows}
    return found


def _found_roots(connection: Connection, roots: set[Root]) -> dict[Root, int]:
    if not roots:
        return {}
    columns = (CONVERSATIONS.c.channel, CONVERSATIONS.c.root_id, CONVERSATIONS.c.identity_id)
    rows = connection.execute(
        select(CONVERSATIONS.c.id, *columns).where(bulk.among(connection, columns, roots))
    )
    return {(r.channel, r.root_id, int(r.identity_id)): int(r.id) for r in rows}
