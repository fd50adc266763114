"""The product's figures an operator watches, read from the record when Prometheus scrapes
(issue 25, item 4): drafts by state and past their review time, the posts waiting per queue
and the oldest wait, the posts received in the last hour (the ingest rate), and
publications by channel and outcome.

Read from the database, not counted in a process: every API replica answers the same
figures (a dashboard takes their max), a restart loses none, and a figure cannot drift from
the record. Five aggregate queries per scrape: the waiting posts and the last hour's are
read through the posts' indexes on status and arrival; drafts and publications are counted
whole, which on a record of millions wants a longer scrape interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from lifecycle.words import PostStatus
from records.tables import DRAFTS, POSTS, PUBLICATIONS, QUEUES
from records.types import utcnow

WAITING = (PostStatus.new.value, PostStatus.assigned.value)
NO_QUEUE = "none"


@dataclass(frozen=True)
class Figures:
    drafts: dict[str, int]  # by status
    sla_breached: int  # drafts whose review stage is past its time
    waiting: dict[str, int]  # posts waiting for a reply, by queue name
    oldest_wait_seconds: dict[str, float]  # by queue name
    received_last_hour: int
    publications: dict[tuple[str, str], int]  # by (channel, status)


def read(connection: Connection, now: datetime | None = None) -> Figures:
    now = now or utcnow()
    drafts = {
        str(status): int(n)
        for status, n in connection.execute(
            select(DRAFTS.c.status, func.count()).group_by(DRAFTS.c.status)
        )
    }
    breached = connection.execute(
        select(func.count()).where(DRAFTS.c.sla_breached.is_(True))
    ).scalar_one()
    waiting: dict[str, int] = {}
    oldest: dict[str, float] = {}
    for name, n, first in connection.execute(
        select(QUEUES.c.name, func.count(), func.min(POSTS.c.received_at))
        .select_from(POSTS.outerjoin(QUEUES, QUEUES.c.id == POSTS.c.queue_id))
        .where(POSTS.c.status.in_(WAITING))
        .group_by(QUEUES.c.name)
    ):  # fmt: skip
        queue = name or NO_QUEUE
        waiting[queue] = int(n)
        oldest[queue] = max((now - first).total_seconds(), 0.0) if first else 0.0
    received = connection.execute(
        select(func.count()).where(POSTS.c.received_at >= now - timedelta(hours=1))
    ).scalar_one()
    publications = {
        (str(channel), str(status)): int(n)
        for channel, status, n in connection.execute(
            select(PUBLICATIONS.c.channel, PUBLICATIONS.c.status, func.count()).group_by(
                PUBLICATIONS.c.channel, PUBLICATIONS.c.status
            )
        )
    }
    return Figures(drafts, int(breached), waiting, oldest, int(received), publications)
