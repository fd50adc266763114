"""Routing in the database (issue 23): where a new post waits (its queue), a round of a
queue's router (the decision is `lifecycle.routing`'s), an agent's presence and skills,
and the overflow of posts that waited too long.

The promises, kept here where the rows are written:
- a post goes to one agent: each decision is written only while the post is still new and
  no one's (a person taking it meanwhile keeps it);
- never to an agent over capacity: a round holds its team's routing lock, so two rounds
  (two processes, a retry) do not both fill the same agent;
- an agent who goes away or offline gives back the posts assigned to them that have no
  draft yet, to be offered again.
Each assignment, give-back and overflow is an audit event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from lifecycle import routing
from lifecycle.words import PostStatus, Presence
from records import agent_states, audit, drafts, locks, notifications
from records.errors import NotFound
from records.tables import AGENTS, POSTS, QUEUES, USERS
from records.types import utcnow

ROUTER = "router"  # who assigns, as the audit record names it
_RULES = ("channels", "languages", "topics", "priorities", "origins")
_FIELD = {"channels": "channel", "languages": "language", "topics": "topic",
          "priorities": "priority", "origins": "origin"}  # fmt: skip


@dataclass(frozen=True)
class QueueRow:
    id: int
    team_id: int | None
    strategy: str
    rules: dict[str, frozenset[str]]
    response_minutes: Mapping[str, int]

    def takes(self, post: Mapping[str, Any]) -> bool:
        return all(not allowed or post.get(_FIELD[name]) in allowed
                   for name, allowed in self.rules.items())  # fmt: skip


def first_taking(found: Sequence[QueueRow], post: Mapping[str, Any]) -> QueueRow | None:
    """The queue a post waits in: the first, in matching order, whose rules it meets."""
    return next((q for q in found if q.takes(post)), None)


def respond_by(
    received_at: datetime, priority: str, queue: QueueRow | None, targets: Mapping[str, int]
) -> datetime:
    """When a post's first reply is due: its arrival plus its queue's target for its
    priority, or else the rule set's (`triage.response_minutes`). The one place this is
    decided; the time is kept on the post (`posts.respond_by`), from arrival, whichever
    queue it moves to later."""
    own = queue.response_minutes.get(priority) if queue is not None else None
    return received_at + timedelta(minutes=own or targets[priority])


def queues(connection: Connection, *, only: int | None = None) -> list[QueueRow]:
    """Every queue (or the one `only` names), in the order a new post is matched."""
    query = select(QUEUES).order_by(QUEUES.c.position, QUEUES.c.id)
    rows = connection.execute(query if only is None else query.where(QUEUES.c.id == only))
    return [
        QueueRow(int(r.id), r.team_id, str(r.strategy),
                 {name: frozenset(getattr(r, name) or ()) for name in _RULES},
                 dict(r.response_minutes or {}))
        for r in rows
    ]  # fmt: skip


def place(
    connection: Connection, rows: Sequence[dict[str, Any]], targets: Mapping[str, int]
) -> None:
    """Each new post's row (`records.ingest`) given the first queue that takes it and when
    its first reply is due (`targets`: the rule set's, for a priority its queue leaves out)."""
    found = queues(connection)
    for row in rows:
        queue = first_taking(found, row)
        row["queue_id"] = queue.id if queue is not None else None
        row["respond_by"] = respond_by(row["received_at"], row["priority"], queue, targets)


def place_waiting(connection: Connection, *, limit: int = 1000) -> int:
    """Waiting posts in no queue (they came before any queue took them) placed in the first
    queue that takes them now; how many. Each keeps the due time it was given as it
    arrived. The router does this before each round."""
    found = queues(connection)
    if not found:
        return 0
    rows = connection.execute(
        select(POSTS.c.id, *(POSTS.c[name] for name in _FIELD.values()))
        .where(POSTS.c.queue_id.is_(None), POSTS.c.assignee.is_(None),
               POSTS.c.status == PostStatus.new.value)
        .order_by(POSTS.c.id)
        .limit(limit)
    ).all()  # fmt: skip
    placed = []
    for row in rows:
        queue = first_taking(found, dict(row._mapping))
        if queue is not None:
            placed.append({"b_id": row.id, "b_queue": queue.id})
    if placed:
        connection.execute(_PLACE, placed)
    return len(placed)


_PLACE = (
    update(POSTS)
    .where(POSTS.c.id == bindparam("b_id"), POSTS.c.queue_id.is_(None))
    .values(queue_id=bindparam("b_queue"))
)


def route(
    connection: Connection, queue_id: int, *, now: datetime | None = None
) -> list[tuple[int, str]]:
    """One round of the queue's router: its waiting posts to its team's available agents.
    The (post, agent) pairs written."""
    now = now or utcnow()
    queue = next(iter(queues(connection, only=queue_id)), None)
    if queue is None:
        raise NotFound(f"no queue with id {queue_id}")
    agents = _agents(connection, queue.team_id)
    room = sum(max(a.capacity - a.load, 0) for a in agents)  # all available (`_agents`)
    if room == 0:
        return []
    waiting = _waiting(connection, queue_id, max(room * 20, 200))
    decided = routing.assign(waiting, agents, now=now, strategy=routing.Strategy(queue.strategy))
    # The posts in id order, as the ingest and the overflow take them (none waits for
    # another crosswise); the audit record's lock last, once every row is written
    # (`audit.append_many`): holding it, a round waits for no one.
    taken_ids = set()
    for post_id, username in sorted(decided):
        taken = connection.execute(
            update(POSTS)
            .where(POSTS.c.id == post_id, POSTS.c.assignee.is_(None),
                   POSTS.c.status == PostStatus.new.value)
            .values(assignee=username, status=PostStatus.assigned.value, assigned_at=now,
                    updated_at=now)
        )  # fmt: skip
        if taken.rowcount == 1:  # else someone took it meanwhile: theirs
            taken_ids.add(post_id)
    written = [(post_id, username) for post_id, username in decided if post_id in taken_ids]
    given = sorted({username for _, username in written})
    if given:  # each agent given a post is no longer idle, as of this round
        connection.execute(
            update(AGENTS).where(AGENTS.c.username.in_(given)).values(idle_since=now)
        )
    appended = audit.append_many(connection, [
        audit.NewEvent(
            actor=ROUTER, role="integration", action="post.assigned",
            payload={"post_id": post_id, "assignee": username, "previous": None,
                     "queue_id": queue_id},
        )
        for post_id, username in written
    ])  # fmt: skip
    for (post_id, username), event in zip(written, appended, strict=True):
        notifications.notify(
            connection, event="assigned", recipients=[username], post_id=post_id,
            message=f"Post {post_id} is yours (queue {queue_id}).",
            event_key=f"audit-{event.seq}",
        )  # fmt: skip
    return written


# A queue's waiting posts of one priority, oldest first: read by the queue's index
# (queue, received_at, id), one priority after another, most urgent first, rather than
# sorting every waiting post of the queue by urgency.
_WAITING = (
    select(POSTS.c.id, POSTS.c.channel, POSTS.c.priority, POSTS.c.received_at,
           POSTS.c.language, POSTS.c.topic)
    .where(POSTS.c.queue_id == bindparam("queue"), POSTS.c.priority == bindparam("priority"),
           POSTS.c.assignee.is_(None), POSTS.c.status == PostStatus.new.value)
    .order_by(POSTS.c.received_at, POSTS.c.id)
    .limit(bindparam("limit"))
)  # fmt: skip


def _waiting(connection: Connection, queue_id: int, limit: int) -> list[routing.Waiting]:
    """Up to `limit` of the queue's waiting posts, most urgent first, then oldest."""
    found: list[routing.Waiting] = []
    for priority in routing.URGENCY:
        if len(found) >= limit:
            break
        rows = connection.execute(
            _WAITING, {"queue": queue_id, "priority": priority, "limit": limit - len(found)}
        )
        found += [
            routing.Waiting(int(r.id), str(r.channel), str(r.priority), r.received_at,
                            r.language, r.topic)
            for r in rows
        ]  # fmt: skip
    return found


def _agents(connection: Connection, team_id: int | None) -> list[routing.Agent]:
    """The available, enabled agents of the team (every agent's profile when the queue has
    no team), with their load: posts assigned to them and not yet answered. The team's
    routing lock is taken first (`_lock`) and held until the round is written; the load is
    read after it is held (on PostgreSQL a statement sees the data as it was when it
    started: read before the lock, a load could miss what the round before wrote)."""
    team = [AGENTS.c.team_id == team_id] if team_id is not None else []
    _lock(connection, team_id)
    # The load of every agent at once: posts assigned and not answered are few (at most
    # every agent's capacity), where a count per agent cost a lookup per agent.
    load = agent_states.loads()
    query = (
        select(AGENTS, func.coalesce(load.c.n, 0).label("load"))
        .join(USERS, USERS.c.username == AGENTS.c.username)
        .outerjoin(load, load.c.assignee == AGENTS.c.username)
        .where(
            *team,
            AGENTS.c.presence == Presence.available.value,  # the others are offered nothing
            agent_states.enabled_agent(),
        )
        .order_by(AGENTS.c.username)
    )
    return [
        routing.Agent(
            username=r.username, presence=Presence(r.presence), capacity=int(r.capacity),
            load=int(r.load), idle_since=r.idle_since, languages=frozenset(r.languages or ()),
            topics=frozenset(r.topics or ()), channels=frozenset(r.channels or ()),
        )
        for r in connection.execute(query)
    ]  # fmt: skip


_EVERYONE = 0  # the lock of a queue without a team, whose round may give any agent a post


def _lock(connection: Connection, team_id: int | None) -> None:
    """The routing lock of a team, until the transaction ends: a round, or an agent's
    presence changing, waits for another on the same agents, so two rounds never both fill
    one agent and no post goes to an agent just gone away. A queue without a team takes
    every agent: its lock excludes every team's (which hold it shared). An advisory lock
    (`records.locks`: one key, not a row lock on every agent)."""
    if team_id is None:
        locks.take(connection, locks.Turn.ROUTING, _EVERYONE)
        return
    locks.take(connection, locks.Turn.ROUTING, _EVERYONE, shared=True)
    locks.take(connection, locks.Turn.ROUTING, team_id)


def profile(connection: Connection, username: str, *, now: datetime | None = None) -> Any:
    """The agent's working state, made (offline, `agent_states.NEW_AGENT`) the first time
    it is asked."""
    row = connection.execute(select(AGENTS).where(AGENTS.c.username == username)).first()
    if row is not None:
        return row
    now = now or utcnow()
    # Two first requests at once make it once (the other's insert does nothing).
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(AGENTS).values(
        username=username, **agent_states.NEW_AGENT, presence=Presence.offline.value,
        presence_since=now, idle_since=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["username"]))  # fmt: skip
    return connection.execute(select(AGENTS).where(AGENTS.c.username == username)).one()


def set_presence(
    connection: Connection, username: str, presence: Presence, *, actor: str, role: str
) -> list[int]:
    """The agent is available, away or offline from now. Going away or offline gives back
    their assigned posts that have no open draft (to be offered again); the ids given back."""
    now = utcnow()
    before = profile(connection, username, now=now)
    _lock(connection, before.team_id)
    values: dict[str, Any] = {"presence": presence.value, "updated_at": now}
    if presence != before.presence:
        values["presence_since"] = now
        if presence is Presence.available:
            values["idle_since"] = now  # back in the line, at its end
    connection.execute(update(AGENTS).where(AGENTS.c.username == username).values(**values))
    given_back: list[int] = []
    if presence is not Presence.available:
        given_back = [int(i) for i in connection.execute(
            update(POSTS)
            .where(POSTS.c.assignee == username, POSTS.c.status == PostStatus.assigned.value,
                   ~drafts.HAS_OPEN_DRAFT)
            .values(assignee=None, status=PostStatus.new.value, assigned_at=None,
                    updated_at=now)
            .returning(POSTS.c.id)
        ).scalars()]  # fmt: skip
    if presence != before.presence or given_back:
        audit.append(connection, audit.NewEvent(
            actor=actor, role=role, action="agent.presence",
            payload={"agent": username, "presence": presence.value, "given_back": given_back},
        ))  # fmt: skip
    return given_back


def overflow(
    connection: Connection, *, now: datetime | None = None, limit: int = 1000
) -> list[tuple[int, int]]:
    """Posts that waited in a queue longer than its `overflow_after_minutes`, unassigned,
    move to its `overflow_to` queue, up to `limit` of them (the oldest by id; the router's
    next run moves the rest); the (post, queue) moves."""
    now = now or utcnow()
    moves: list[tuple[int, int, int]] = []  # post, from, to
    rows = connection.execute(
        select(QUEUES.c.id, QUEUES.c.overflow_to, QUEUES.c.overflow_after_minutes).where(
            QUEUES.c.overflow_to.is_not(None)
        )
    ).all()
    late = {
        int(queue_id): (int(target), and_(
            POSTS.c.queue_id == queue_id, POSTS.c.assignee.is_(None),
            POSTS.c.status == PostStatus.new.value,
            POSTS.c.received_at < now - timedelta(minutes=int(minutes))))
        for queue_id, target, minutes in rows
    }  # fmt: skip
    if not late:
        return []
    # Every late post locked first, in id order (as `route` writes them), then moved.
    locked = locks.rows(connection, POSTS, or_(*(waited for _, waited in late.values())),
                        limit=limit)  # fmt: skip
    if not locked:
        return []
    for queue_id, (target, waited) in late.items():
        ids = connection.execute(
            update(POSTS).where(POSTS.c.id.in_(locked), waited)
            .values(queue_id=target, updated_at=now).returning(POSTS.c.id)
        ).scalars()  # fmt: skip
        moves += [(int(post_id), int(queue_id), int(target)) for post_id in ids]
    # The audit record's lock once every post is moved (as `route`).
    audit.append_many(connection, [
        audit.NewEvent(
            actor=ROUTER, role="integration", action="post.overflowed",
            payload={"post_id": post_id, "from": source, "to": target},
        )
        for post_id, source, target in moves
    ])  # fmt: skip
    return [(post_id, target) for post_id, _, target in moves]
