"""What `bench/chaos.py` checks once the load has stopped and the processes have settled:
each promise read from the record the service kept, from what the fake channel and the
notification receiver were sent, and from the answers its clients got. Each check is a
line of the summary: its name, whether it holds, and what was found."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from bench.chaos_load import Answers, Draft, expected_status
from records.db import Database


@dataclass(frozen=True)
class Check:
    name: str
    holds: bool
    found: str


def final_states(database: Database, drafts: list[Draft]) -> Check:
    with database.engine.connect() as connection:
        rows: dict[int | None, str] = dict(
            connection.execute(text("SELECT id, status FROM drafts")).all()
        )
    wrong = [
        f"#{d.n} (draft {d.draft_id}: {rows.get(d.draft_id)}, wanted {expected_status(d.n)}; "
        f"last answer {d.last})"
        for d in drafts
        if d.draft_id is None or rows.get(d.draft_id) != expected_status(d.n)
    ]
    extra = len(rows) - len({d.draft_id for d in drafts if d.draft_id is not None})
    found = Counter(str(rows.get(d.draft_id)) for d in drafts)
    return Check(
        "every draft reached its expected final state",
        not wrong and extra == 0,
        f"{len(drafts)} drafts: {dict(found)}; {extra} made twice"
        + (f"; wrong: {', '.join(wrong[:5])}" if wrong else ""),
    )


def posted_once(database: Database, tweets: list[dict[str, Any]]) -> Check:
    """Each published draft's reply is on the channel once, and nothing else is."""
    with database.engine.connect() as connection:
        published: dict[str, int] = dict(connection.execute(text(
            "SELECT p.external_id, d.id FROM drafts d JOIN posts p ON p.id = d.post_id "
            "WHERE d.status = 'published'"
        )).all())  # fmt: skip
    replies = Counter(t["referenced_tweets"][0]["id"] for t in tweets)
    twice = {post: n for post, n in replies.items() if n > 1}
    missing = set(published) - set(replies)
    stray = set(replies) - set(published)
    return Check(
        "each approved reply was posted exactly once",
        not twice and not missing and not stray,
        f"{len(published)} published, {len(tweets)} posts on the channel; "
        f"{len(twice)} twice, {len(missing)} missing, {len(stray)} not published",
    )


def decisions_once(database: Database, drafts: list[Draft]) -> Check:
    """Each draft that was decided (published or rejected) has one decision in the record
    and one audit event for it, per stage and review round: none lost, none twice."""
    with database.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT e.draft_id, d.review_round, d.stage, COUNT(DISTINCT e.seq) "
            "FROM audit_events e JOIN decisions d ON d.draft_id = e.draft_id "
            "WHERE e.action IN ('draft.approve', 'draft.reject', 'draft.request_changes') "
            "GROUP BY e.draft_id, d.review_round, d.stage"
        )).all()  # fmt: skip
        decided = connection.execute(text("SELECT COUNT(*) FROM decisions")).scalar_one()
    wanted = sum(expected_status(d.n) in ("published", "rejected") for d in drafts)
    twice = [draft for draft, _, _, n in rows if n > 1]
    events = sum(n for *_, n in rows)
    return Check(
        "no decision is recorded twice",
        not twice and decided == wanted and events == wanted,
        f"{wanted} drafts to decide: {decided} decisions, {events} decision events; "
        f"{len(twice)} decided twice",
    )


def notifications_once(database: Database, received: list[dict[str, Any]]) -> Check:
    """Per person, event and draft: one notification in the app, its webhook delivery sent,
    and the receiver given it under one delivery id (a repeat of the same id, a send whose
    answer was lost, is the receiver's to drop, and is counted)."""
    with database.engine.connect() as connection:
        made = connection.execute(text(
            "SELECT n.recipient, n.event, n.draft_id, d.id, d.status FROM notifications n "
            "LEFT JOIN notification_deliveries d ON d.notification_id = n.id"
        )).all()  # fmt: skip
        published = [r[0] for r in connection.execute(text(
            "SELECT d.id FROM drafts d WHERE d.status = 'published' AND NOT EXISTS ("
            " SELECT 1 FROM notifications n WHERE n.draft_id = d.id AND n.event = 'published')"
        ))]  # fmt: skip
    per_event = Counter((r[0], r[1], r[2]) for r in made)
    doubled = [k for k, n in per_event.items() if n > 1]
    unsent = [r for r in made if r[3] is None or r[4] != "sent"]
    ids_by_event: dict[tuple[Any, ...], set[int]] = {}
    for delivery in received:
        event = (delivery["recipient"], delivery["event"], delivery["draft_id"])
        ids_by_event.setdefault(event, set()).add(delivery["delivery_id"])
    lost = set(per_event) - set(ids_by_event)
    doubled += [k for k, ids in ids_by_event.items() if len(ids) > 1]
    repeats = len(received) - sum(len(ids) for ids in ids_by_event.values())
    return Check(
        "no notification is lost or doubled per person and event",
        not doubled and not unsent and not lost and not published,
        f"{len(per_event)} notifications, {len(received)} webhook deliveries received "
        f"({repeats} repeats of a delivery id); {len(doubled)} doubled, {len(unsent)} not "
        f"sent, {len(lost)} never received, {len(published)} published drafts unannounced",
    )


def audit_verifies(environment: dict[str, str]) -> Check:
    """`countersign audit verify`, as an operator or auditor runs it."""
    run = subprocess.run([sys.executable, "-m", "countersign.cli", "audit", "verify"],
                         env=environment, capture_output=True, text=True)  # fmt: skip
    said = (run.stdout + run.stderr).strip().splitlines()
    return Check("audit verify is ok", run.returncode == 0, said[-1] if said else "")


def client_errors(answers: Answers) -> Check:
    """No answer but a 503 with Retry-After for an outage, and the outages were felt (a
    run whose clients never met one showed nothing); a hung API (a request that timed out
    unanswered) fails too."""
    holds = not answers.server_errors and not answers.unavailable_without_retry_after
    felt = answers.statuses[503] > 0
    return Check(
        "client errors during outages were 503 with Retry-After, never 500",
        holds and felt and not answers.timed_out and not answers.gave_up,
        f"answers not 2xx: {dict(sorted(answers.statuses.items()))}; "
        f"{answers.unavailable_without_retry_after} 503 without Retry-After; "
        f"{answers.unreachable} connections refused or dropped (retried elsewhere); "
        f"{answers.timed_out} timed out unanswered; {len(answers.gave_up)} requests given up"
        + (f"; 5xx: {answers.server_errors[:3]}" if answers.server_errors else ""),
    )


def memory(slots: list[tuple[str, int | None, int | None, int, float]]) -> Check:
    """Each process's resident memory at the end within 1.5 times its first start's (the
    one at the end was started again by the kills: how long it had run is printed)."""
    grown = [name for name, start, end, *_ in slots if not start or not end or end > 1.5 * start]
    return Check(
        "memory per process at the end against the start",
        not grown,
        "within 1.5x" if not grown else f"grown or unread: {', '.join(grown)}",
    )
