"""Triage of a batch of new posts as `records.ingest` stores them (issue 23): the rule set in
force (`policies.triage` does the reading of each post), the author's earlier posts of the
same text (a bot repeats itself), a priority the source claimed, spam dismissed where the
rule set says so, and the alert a public-risk post raises for comms and the supervisors,
in the transaction that stores it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from lifecycle.routing import URGENCY
from lifecycle.words import TRIAGE_ACTOR, DismissReason, PostStatus, Role
from policies import triage
from policies.readers import Pending
from policies.versions import RuleBook
from records import bulk, notifications, rulesets
from records.fields import Priority
from records.post_models import PostCreate
from records.tables import POSTS

# How far back an author's identical posts count as repeats.
REPEAT_WINDOW = timedelta(days=7)


def rules_in_force(connection: Connection, book: RuleBook) -> triage.Rules:
    """The triage section of the rule set active now (compiled once per version)."""
    version = rulesets.active_version(connection)
    return book.get(version, lambda v: rulesets.source_of(connection, v)).triage


def triage_batch(
    connection: Connection,
    rules: triage.Rules,
    fresh: list[PostCreate],
    customers: list[int],
    readings: Pending,
) -> list[triage.Triage]:
    """Each post of `fresh` (by the customer beside it) triaged, its text read already
    (`readings`, of `fresh`'s texts: `policies.readers`)."""
    repeats = _earlier_texts(connection, fresh, customers)
    results = []
    for data, customer, reading in zip(fresh, customers, readings.result(), strict=True):
        key = (customer, data.text)
        profile = data.author_profile
        result = triage.triage(
            rules, data.text, origin=data.origin.value, at=data.received_at,
            author=triage.Author(
                followers=profile.followers if profile else None,
                verified=profile.verified if profile else None,
                created_at=profile.joined_at if profile else None,
            ),
            repeats=repeats[key], reading=reading,
        )  # fmt: skip
        repeats[key] += 1  # the next copy in this batch repeats this one
        results.append(_claimed(data, result))
    return results


def columns(rules: triage.Rules, result: triage.Triage, now: datetime) -> dict[str, Any]:
    """A new post's columns from its triage: what triage found, and its status: dismissed
    as spam where the rule set says so (`spam.dismiss`), else new."""
    if result.spam is None or not rules.dismiss_spam:
        dismissal: dict[str, Any] = {
            "status": PostStatus.new.value, "dismissed_reason": None, "dismissed_note": None,
            "dismissed_by": None, "dismissed_at": None,
        }  # fmt: skip
    else:
        dismissal = {
            "status": PostStatus.dismissed.value, "dismissed_reason": DismissReason.spam.value,
            "dismissed_note": next((r for r in result.reasons if r.startswith("spam")), None),
            "dismissed_by": TRIAGE_ACTOR, "dismissed_at": now,
        }  # fmt: skip
    return {**result.as_row(), **dismissal}


def _claimed(data: PostCreate, result: triage.Triage) -> triage.Triage:
    """A source that says how urgent a post is (a webhook's `priority`) is heard when it
    says more urgent than triage found; never less."""
    if "priority" not in data.model_fields_set or data.priority is Priority.normal:
        return result
    claimed = data.priority.value
    if URGENCY[claimed] >= URGENCY[result.priority]:
        return result
    return triage.Triage(**{
        **vars(result), "priority": claimed,
        "reasons": [*result.reasons, f"priority {claimed}: as the source said"],
    })  # fmt: skip


def _earlier_texts(
    connection: Connection, fresh: list[PostCreate], customers: list[int]
) -> Counter[tuple[int, str]]:
    """How many posts with the same text as one of `fresh` each of its customers sent
    lately (a copy: a bot's copies are exact). Read by the customers' index."""
    if not fresh:
        return Counter()
    since = min(data.received_at for data in fresh) - REPEAT_WINDOW
    pairs = {(customer, data.text) for data, customer in zip(fresh, customers, strict=True)}
    rows = connection.execute(
        select(POSTS.c.customer_id, POSTS.c.text).where(
            bulk.among(connection, (POSTS.c.customer_id, POSTS.c.text), pairs),
            POSTS.c.received_at >= since,
        )
    )
    return Counter((int(row.customer_id), str(row.text)) for row in rows)


def alert_public_risk(connection: Connection, risky: list[tuple[int, str]]) -> None:
    """Tell comms and the supervisors of each public-risk post (its id, its channel) at
    once: in the app, once per post and person."""
    if not risky:
        return
    people = notifications.holders(connection, Role.comms.value, Role.supervisor.value)
    for post_id, channel in risky:
        notifications.notify(
            connection, event="public_risk", recipients=people, post_id=post_id,
            event_key=f"post:{post_id}:public_risk",
            message=f"Public risk: post {post_id} on {channel} needs an answer soon.",
        )  # fmt: skip
