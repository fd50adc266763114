"""The staffing forecast from what the database holds (issue 23): per queue, the posts that
arrived each hour of the last weeks, the measured handle time, and the agents who serve it;
`policies.staffing` turns them into the coming week's arrivals and agents needed.

- Arrivals: posts received, less those dismissed (spam never reaches an agent). The
  history begins with the first post of the window, whichever queue it went to, or with
  the queue, if it was made later: a quiet queue's empty weeks count as weeks with no
  post, the weeks before a queue existed do not.
- Handle time: a post's `assigned_at` to the first review its reply opened (the agent's
  submission), averaged over the history, each post counted at most `HANDLE_CAP` (a post
  parked overnight is not a night of work); a queue with no measurement takes every
  queue's, and with none at all `DEFAULT_HANDLE_MINUTES` (`handle_from` says which).
- Concurrency: the mean capacity of the agents of the queue's team (every agent, for a
  queue without a team), at least 1.
- The wait target: a post must reach an agent early enough to be handled within its
  first-response target, so the wait allowed is the queue's target (the rule set's, where
  the queue sets none) for the most urgent priority it took in the history, less the
  handle time, at least a minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, literal, literal_column, select
from sqlalchemy.engine import Connection

from lifecycle.routing import urgency
from lifecycle.words import PostStatus
from policies import staffing
from records.fields import Priority
from records.report_sql import seconds_between, utc_hour
from records.tables import AGENTS, DRAFTS, POSTS, QUEUES, STAGE_REVIEWS

DEFAULT_HANDLE_MINUTES = 15.0
HANDLE_CAP = timedelta(hours=8)
HISTORY_WEEKS = 4
ALL = "all"


class HandleFrom(StrEnum):
    """Where a queue's handle time comes from."""

    queue = "queue"  # measured on its own posts
    all_queues = "all_queues"  # it had none: every queue's
    default = "default"  # no measurement anywhere yet


def forecast(
    connection: Connection,
    now: datetime,
    targets: Mapping[str, int],
    target: staffing.Target,
    *,
    hours: int = 168,
) -> list[dict[str, Any]]:
    """Per queue (and the posts in none): its handle time and, for each hour of the
    coming `hours`, the posts expected and the agents needed."""
    window = staffing.hour_of(now) - timedelta(weeks=HISTORY_WEEKS)
    arrivals, priorities = _arrivals(connection, window)
    since = min((h for history in arrivals.values() for h in history), default=now)
    handle = _handle_minutes(connection, window)
    concurrency = _concurrency(connection)
    start = staffing.hour_of(now) + staffing.HOUR
    queues = connection.execute(
        select(QUEUES.c.id, QUEUES.c.name, QUEUES.c.team_id, QUEUES.c.response_minutes,
               QUEUES.c.created_at)
        .order_by(QUEUES.c.position, QUEUES.c.id)
    ).all()  # fmt: skip
    result = []
    for queue_id, name, team_id, own, created in [*queues, (None, "no queue", None, {}, None)]:
        history = arrivals.get(queue_id, {})
        if queue_id is None and not history:
            continue
        source = (
            HandleFrom.queue if queue_id in handle
            else HandleFrom.all_queues if ALL in handle else HandleFrom.default
        )  # fmt: skip
        minutes = handle.get(queue_id) or handle.get(ALL) or DEFAULT_HANDLE_MINUTES
        strictest = min(priorities.get(queue_id, {Priority.normal.value}), key=urgency)
        respond_within = (own or {}).get(strictest) or targets[strictest]
        wanted = replace(
            target,
            wait_minutes=max(respond_within - minutes, 1.0),
            concurrency=concurrency[ALL] if team_id is None else concurrency.get(team_id, 1),
        )
        # A queue made after the history began has no weeks before it: not weeks of none.
        begun = max(since, staffing.hour_of(created)) if created is not None else since
        hours_ahead = staffing.forecast(history, start, hours=hours, since=begun)
        result.append({
            "queue_id": queue_id, "queue": name, "handle_minutes": round(minutes, 1),
            "handle_from": source, "staffed_for": strictest,
            "wait_minutes": round(wanted.wait_minutes, 1), "concurrency": wanted.concurrency,
            "hours": [
                {"hour": hour, "arrivals": expected,
                 "agents": staffing.agents_needed(expected, minutes, wanted)}
                for hour, expected in hours_ahead
            ],
        })  # fmt: skip
    return result


def _arrivals(
    connection: Connection, since: datetime
) -> tuple[dict[int | None, dict[datetime, int]], dict[int | None, set[str]]]:
    """Per queue: the posts that needed an agent, per hour; and the priorities they had."""
    hour = utc_hour(POSTS.c.received_at).label("hour")
    found: dict[int | None, dict[datetime, int]] = {}
    priorities: dict[int | None, set[str]] = {}
    for queue_id, at, priority, n in connection.execute(
        select(POSTS.c.queue_id, hour, POSTS.c.priority, func.count())
        .where(POSTS.c.received_at >= since, POSTS.c.status != PostStatus.dismissed.value)
        .group_by(POSTS.c.queue_id, literal_column("hour"), POSTS.c.priority)
    ):
        when = datetime.fromisoformat(f"{at}:00+00:00")
        by_hour = found.setdefault(queue_id, {})
        by_hour[when] = by_hour.get(when, 0) + int(n)
        priorities.setdefault(queue_id, set()).add(str(priority))
    return found, priorities


def _handle_minutes(connection: Connection, since: datetime) -> dict[Any, float]:
    """Mean minutes from assignment to submission per queue, and over all (`ALL`)."""
    submitted = (
        select(DRAFTS.c.post_id, func.min(STAGE_REVIEWS.c.opened_at).label("at"))
        .select_from(STAGE_REVIEWS.join(DRAFTS, DRAFTS.c.id == STAGE_REVIEWS.c.draft_id))
        .group_by(DRAFTS.c.post_id)
        .subquery("submitted")
    )
    raw = seconds_between(POSTS.c.assigned_at, submitted.c.at)
    cap = HANDLE_CAP.total_seconds()
    seconds = case((raw > cap, literal(cap)), else_=raw)
    joined = POSTS.join(submitted, submitted.c.post_id == POSTS.c.id)
    scope = [POSTS.c.assigned_at >= since, submitted.c.at >= POSTS.c.assigned_at]
    found: dict[Any, float] = {}
    total, counted = 0.0, 0
    # One pass: each queue's sum and count, which add up to the mean over all.
    for queue_id, summed, n in connection.execute(
        select(POSTS.c.queue_id, func.sum(seconds), func.count(seconds)).select_from(joined)
        .where(*scope).group_by(POSTS.c.queue_id)
    ):  # fmt: skip
        if n:
            found[queue_id] = max(float(summed) / n / 60, 0.1)
            total, counted = total + float(summed), counted + int(n)
    if counted:
        found[ALL] = max(total / counted / 60, 0.1)
    return found


def _concurrency(connection: Connection) -> dict[Any, int]:
    """The agents' mean capacity per team, and over all agents (`ALL`)."""
    found: dict[Any, int] = {
        team_id: max(int(mean), 1)
        for team_id, mean in connection.execute(
            select(AGENTS.c.team_id, func.avg(AGENTS.c.capacity)).group_by(AGENTS.c.team_id)
        )
    }
    overall = connection.execute(select(func.avg(AGENTS.c.capacity))).scalar()
    found[ALL] = max(int(overall), 1) if overall is not None else 1
    return found
