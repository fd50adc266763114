"""The contact center's KPIs (issue 23), beside the approval KPIs of `records.reports`:

- response rate: of the posts received in the window that needed a reply (not dismissed),
  the share answered;
- first-response targets per queue and priority: met, missed, pending and the share
  within target (`records.response_times` says what each means);
- trends per UTC day: posts per topic, and the mean sentiment (VADER's compound score);
- public risk: the posts triage flagged, how many were answered, how fast (p50, p90) and
  how many within target.
Every figure selects posts by when they were received.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Float, cast, func, literal_column, select
from sqlalchemy.engine import Connection

from records.report_sql import Window, percentiles, rounded, seconds_between, utc_day
from records.response_times import FIRST_REPLY, Outcome, outcomes, share
from records.tables import POSTS, QUEUES

NO_QUEUE = "no queue"
NO_TOPIC = "(no topic)"  # not a topic's name: those are [a-z0-9_-]


def _received(window: Window) -> list[Any]:
    return [*window.of(POSTS.c.received_at), *window.on_channel()]


def targets(connection: Connection, window: Window, now: datetime) -> dict[str, Any]:
    """The response rate, and the first-response outcomes per queue and priority."""
    answered_per: Counter[tuple[Any, ...]] = Counter()
    counted = outcomes(
        connection, now, [QUEUES.c.name, POSTS.c.priority], _received(window),
        POSTS.outerjoin(QUEUES, QUEUES.c.id == POSTS.c.queue_id), answered=answered_per,
    )  # fmt: skip
    cells = {(name or NO_QUEUE, priority): cell for (name, priority), cell in counted.items()}
    per_queue = [
        {
            "queue": name, "priority": priority,
            "received": sum(cell.values()),
            **{str(o): cell[o] for o in Outcome},
            "within_target": share(cell),
        }
        for (name, priority), cell in sorted(cells.items())
    ]  # fmt: skip
    totals = sum(cells.values(), Counter[Outcome]())
    answered = sum(answered_per.values())
    needing = sum(totals.values()) - totals[Outcome.dismissed]
    return {
        "received": sum(totals.values()),
        "needing_reply": needing,
        "answered": answered,
        "response_rate": round(answered / needing, 4) if needing else None,
        "within_target": share(totals),
        "per_queue": per_queue,
    }


def trends(connection: Connection, window: Window) -> list[dict[str, Any]]:
    """Per UTC day: posts received per topic, and their mean sentiment. One pass over the
    window's posts: per day and topic, the count and the sentiment's sum and count, which
    add up to the day's mean."""
    day = utc_day(POSTS.c.received_at).label("day")
    rows = connection.execute(
        select(day, POSTS.c.topic, func.count(), func.sum(cast(POSTS.c.sentiment, Float)),
               func.count(POSTS.c.sentiment))
        .where(*_received(window))
        .group_by(literal_column("day"), POSTS.c.topic)
    ).all()  # fmt: skip
    days: dict[str, dict[str, Any]] = {}
    moods: dict[str, tuple[float, int]] = {}
    for when, topic, n, total, scored in rows:
        entry = days.setdefault(str(when), {"day": str(when), "topics": {}, "posts": 0})
        entry["topics"][topic or NO_TOPIC] = n
        entry["posts"] += n
        summed, count = moods.get(str(when), (0.0, 0))
        moods[str(when)] = (summed + float(total or 0.0), count + scored)
    for when, (summed, scored) in moods.items():
        days[when]["sentiment"] = round(summed / scored, 3) if scored else None
        days[when]["scored"] = scored
    return [days[d] for d in sorted(days)]


def public_risk(connection: Connection, window: Window, now: datetime) -> dict[str, Any]:
    """The posts flagged a public risk: how many, answered, how fast, and within target."""
    flagged = [*_received(window), POSTS.c.public_risk.is_(True)]
    verdicts = outcomes(connection, now, [], flagged).get((), Counter[Outcome]())
    answered: Any = select(
        seconds_between(POSTS.c.received_at, FIRST_REPLY).label("seconds"),
        literal_column("1").label("all_"),
    ).where(*flagged, FIRST_REPLY.is_not(None))
    speed = connection.execute(percentiles(answered, "all_")).first()
    return {
        "flagged": sum(verdicts.values()),
        "answered": speed.count if speed else 0,
        "p50_seconds": rounded(speed.p50) if speed else None,
        "p90_seconds": rounded(speed.p90) if speed else None,
        "within_target": share(verdicts),
    }


def service(connection: Connection, window: Window, now: datetime) -> dict[str, Any]:
    return {
        "targets": targets(connection, window, now),
        "trends": trends(connection, window),
        "public_risk": public_risk(connection, window, now),
    }
