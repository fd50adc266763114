"""The supervisor's live queue board (issue 23): per queue, now — how many posts wait for
an agent, how many are with agents and not answered yet, how long the oldest has waited,
how many are past their first-response target, how many agents are available to it, and
the share of today's posts (UTC) answered within target, of those whose outcome is known
(met or missed: `records.response_times`).

A queue's agents are its team's (every agent, for a queue without a team), as the router
(`records.routing`) offers them posts. Posts in no queue are shown as one more row, so the
board adds up to the whole inbox.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from lifecycle.words import PostStatus, Presence
from records import agent_states
from records.response_times import Outcome, outcomes, share
from records.tables import AGENTS, POSTS, QUEUES, USERS

WAITING = (PostStatus.new.value, PostStatus.assigned.value)  # not answered, not dismissed


def board(connection: Connection, now: datetime) -> list[dict[str, Any]]:
    """A row per queue, in the order posts are matched to them, then the posts in none."""
    queues = connection.execute(
        select(QUEUES.c.id, QUEUES.c.name, QUEUES.c.team_id).order_by(
            QUEUES.c.position, QUEUES.c.id
        )
    ).all()
    live = {row.queue_id: row for row in connection.execute(_live(now))}
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = outcomes(connection, now, [POSTS.c.queue_id], [POSTS.c.received_at >= midnight])
    available = _available(connection)
    every_agent = sum(available.values())
    rows = []
    for queue_id, name, team_id in [*queues, (None, None, None)]:
        figures = live.get(queue_id)
        if queue_id is None and figures is None:
            continue  # no post outside the queues: no row for them
        counts = today.get((queue_id,), Counter())
        rows.append({
            "queue_id": queue_id,
            "queue": name or "no queue",
            "waiting": int(figures.waiting) if figures else 0,
            "with_agents": int(figures.with_agents) if figures else 0,
            "oldest_wait_seconds": _age(figures.oldest, now) if figures else None,
            "overdue": int(figures.overdue) if figures else 0,
            "agents_available": available.get(team_id, 0) if team_id else every_agent,
            "within_target_today": share(counts),
            "with_outcome_today": counts[Outcome.met] + counts[Outcome.missed],
        })  # fmt: skip
    return rows


def _live(now: datetime) -> Any:
    """Per queue: posts waiting for an agent, with agents, the oldest wait, past due."""
    new = POSTS.c.status == PostStatus.new.value
    return (
        select(
            POSTS.c.queue_id,
            func.count().filter(new).label("waiting"),
            func.count().filter(POSTS.c.status == PostStatus.assigned.value).label("with_agents"),
            func.min(POSTS.c.received_at).filter(new).label("oldest"),
            func.count().filter(POSTS.c.respond_by < now).label("overdue"),
        )
        .where(POSTS.c.status.in_(WAITING))
        .group_by(POSTS.c.queue_id)
    )


def _available(connection: Connection) -> dict[int | None, int]:
    """Available, enabled agents per team (None: agents of no team)."""
    query = (
        select(AGENTS.c.team_id, func.count())
        .join(USERS, USERS.c.username == AGENTS.c.username)
        .where(AGENTS.c.presence == Presence.available.value, agent_states.enabled_agent())
        .group_by(AGENTS.c.team_id)
    )
    return {team_id: int(n) for team_id, n in connection.execute(query)}


def _age(oldest: datetime | None, now: datetime) -> float | None:
    return None if oldest is None else round((now - oldest).total_seconds(), 1)
