"""The staffing forecast from what the database holds (issue 23): per queue, the posts that
arrived each hour of the last weeks, the measured handle time, and the agents who serve it;
`policies.staffing` turns them into the coming week's arrivals and agents needed.

- Handle time: a post's `assigned_at` to the first review its reply opened (the agent's
  submission), averaged over the history; a queue with no measurement takes every queue's,
  and with none at all `DEFAULT_HANDLE_MINUTES` (the forecast says which it used).
- Concurrency: the mean capacity of the available-or-not agents of the queue's team (every
  agent, for a queue without a team), at least 1.
- The wait target: a post must reach an agent early enough to be handled within its
  first-response target, so the wait allowed is the queue's target for `normal` posts (the
  rule set's, where the queue sets none) less the handle time, at least a minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal_column, select
from sqlalchemy.engine import Connection

from policies import staffing
from records.report_sql import seconds_between, utc_hour
from records.tables import AGENTS, DRAFTS, POSTS, QUEUES, STAGE_REVIEWS

DEFAULT_HANDLE_MINUTES = 15.0
HISTORY_WEEKS = 4
NORMAL = "normal"


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
    since = staffing.hour_of(now) - timedelta(weeks=HISTORY_WEEKS)
    arrivals = _arrivals(connection, since)
    handle = _handle_minutes(connection, since)
    overall = handle.pop("all", None)
    concurrency = _concurrency(connection)
    start = staffing.hour_of(now) + staffing.HOUR
    queues = connection.execute(
        select(QUEUES.c.id, QUEUES.c.name, QUEUES.c.team_id, QUEUES.c.response_minutes)
        .order_by(QUEUES.c.position, QUEUES.c.id)
    ).all()  # fmt: skip
    result = []
    for queue_id, name, team_id, own in [*queues, (None, "no queue", None, {})]:
        history = arrivals.get(queue_id, {})
        if queue_id is None and not history:
            continue
        first = min(history, default=start)
        minutes = handle.get(queue_id) or overall or DEFAULT_HANDLE_MINUTES
        measured = queue_id in handle or overall is not None
        respond_within = (own or {}).get(NORMAL) or targets[NORMAL]
        wanted = replace(
            target,
            wait_minutes=max(respond_within - minutes, 1.0),
            concurrency=concurrency["all"] if team_id is None else concurrency.get(team_id, 1),
        )
        hours_ahead = staffing.forecast(history, start, hours=hours, since=first)
        result.append({
            "queue_id": queue_id, "queue": name, "handle_minutes": round(minutes, 1),
            "handle_measured": measured, "wait_minutes": round(wanted.wait_minutes, 1),
            "concurrency": wanted.concurrency,
            "hours": [
                {"hour": hour, "arrivals": expected,
                 "agents": staffing.agents_needed(expected, minutes, wanted)}
                for hour, expected in hours_ahead
            ],
        })  # fmt: skip
    return result


def _arrivals(connection: Connection, since: datetime) -> dict[int | None, dict[datetime, int]]:
    hour = utc_hour(POSTS.c.received_at).label("hour")
    found: dict[int | None, dict[datetime, int]] = {}
    for queue_id, at, n in connection.execute(
        select(POSTS.c.queue_id, hour, func.count())
        .where(POSTS.c.received_at >= since)
        .group_by(POSTS.c.queue_id, literal_column("hour"))
    ):
        when = datetime.fromisoformat(f"{at}:00+00:00")
        found.setdefault(queue_id, {})[when] = int(n)
    return found


def _handle_minutes(connection: Connection, since: datetime) -> dict[Any, float]:
    """Mean minutes from assignment to submission per queue, and over all ("all")."""
    submitted = (
        select(DRAFTS.c.post_id, func.min(STAGE_REVIEWS.c.opened_at).label("at"))
        .select_from(STAGE_REVIEWS.join(DRAFTS, DRAFTS.c.id == STAGE_REVIEWS.c.draft_id))
        .group_by(DRAFTS.c.post_id)
        .subquery("submitted")
    )
    seconds = seconds_between(POSTS.c.assigned_at, submitted.c.at)
    scope = and_(POSTS.c.assigned_at >= since, submitted.c.at >= POSTS.c.assigned_at)
    joined = POSTS.join(submitted, submitted.c.post_id == POSTS.c.id)
    found: dict[Any, float] = {}
    for queue_id, mean in connection.execute(
        select(POSTS.c.queue_id, func.avg(seconds)).select_from(joined).where(scope)
        .group_by(POSTS.c.queue_id)
    ):  # fmt: skip
        found[queue_id] = max(float(mean) / 60, 0.1)
    overall = connection.execute(
        select(func.avg(seconds)).select_from(joined).where(scope)
    ).scalar()
    if overall is not None:
        found["all"] = max(float(overall) / 60, 0.1)
    return found


def _concurrency(connection: Connection) -> dict[Any, int]:
    """The agents' mean capacity per team, and over all agents ("all")."""
    found: dict[Any, int] = {
        team_id: max(int(mean), 1)
        for team_id, mean in connection.execute(
            select(AGENTS.c.team_id, func.avg(AGENTS.c.capacity)).group_by(AGENTS.c.team_id)
        )
    }
    overall = connection.execute(select(func.avg(AGENTS.c.capacity))).scalar()
    found["all"] = max(int(overall), 1) if overall is not None else 1
    return found
