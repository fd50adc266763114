"""Setting up routing (issue 23): teams, queues and an agent's skills, each change audited.
The API and the demo seed both write through here; the rounds that use them are
`records.routing`'s. A name taken is a `Conflict`; the caller's transaction is then
rolled back whole (on PostgreSQL it cannot go on after the failed insert)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from records import audit, routing
from records.errors import Conflict, Invalid, NotFound
from records.routing_models import AgentSkills, QueueCreate
from records.tables import AGENTS, QUEUES, TEAMS
from records.types import utcnow


def create_team(connection: Connection, name: str, *, actor: str, role: str) -> int:
    try:
        team_id = int(connection.execute(
            TEAMS.insert().values(name=name, created_at=utcnow()).returning(TEAMS.c.id)
        ).scalar_one())  # fmt: skip
    except IntegrityError:
        raise Conflict(f"a team named {name!r} exists") from None
    _audit(connection, actor, role, "team.created", {"team_id": team_id, "name": name})
    return team_id


def create_queue(connection: Connection, body: QueueCreate, *, actor: str, role: str) -> int:
    _exists(connection, body.team_id, body.overflow_to)
    now = utcnow()
    values = {**body.model_dump(mode="json"), "created_at": now, "updated_at": now}
    try:
        queue_id = int(
            connection.execute(QUEUES.insert().values(**values).returning(QUEUES.c.id))
            .scalar_one()
        )  # fmt: skip
    except IntegrityError:
        raise Conflict(f"a queue named {body.name!r} exists") from None
    payload = {"queue_id": queue_id, **body.model_dump(mode="json")}
    _audit(connection, actor, role, "queue.created", payload)
    return queue_id


def change_queue(
    connection: Connection, queue_id: int, body: QueueCreate, *, actor: str, role: str
) -> None:
    """The queue's rules, targets and overflow from now on (posts already waiting keep
    their due time: it was set as each arrived)."""
    if body.overflow_to == queue_id:
        raise Invalid("a queue cannot overflow to itself", field="overflow_to")
    _exists(connection, body.team_id, body.overflow_to)
    try:
        changed = connection.execute(
            update(QUEUES).where(QUEUES.c.id == queue_id)
            .values(**body.model_dump(mode="json"), updated_at=utcnow())
        )  # fmt: skip
    except IntegrityError:
        raise Conflict(f"a queue named {body.name!r} exists") from None
    if changed.rowcount != 1:
        raise NotFound(f"no queue with id {queue_id}")
    payload = {"queue_id": queue_id, **body.model_dump(mode="json")}
    _audit(connection, actor, role, "queue.changed", payload)


def set_skills(
    connection: Connection, username: str, body: AgentSkills, *, actor: str, role: str
) -> None:
    """The agent's team, skills and capacity (their profile is made if they have none)."""
    _exists(connection, body.team_id, None)
    routing.profile(connection, username)
    connection.execute(
        update(AGENTS).where(AGENTS.c.username == username)
        .values(**body.model_dump(mode="json"), updated_at=utcnow())
    )  # fmt: skip
    _audit(
        connection, actor, role, "agent.skills", {"agent": username, **body.model_dump(mode="json")}
    )


def _exists(connection: Connection, team_id: int | None, queue_id: int | None) -> None:
    if (
        team_id is not None
        and connection.execute(select(TEAMS.c.id).where(TEAMS.c.id == team_id)).first() is None
    ):
        raise Invalid(f"no team with id {team_id}", field="team_id")
    if (
        queue_id is not None
        and connection.execute(select(QUEUES.c.id).where(QUEUES.c.id == queue_id)).first() is None
    ):
        raise Invalid(f"no queue with id {queue_id}", field="overflow_to")


def _audit(
    connection: Connection, actor: str, role: str, action: str, payload: dict[str, Any]
) -> None:
    audit.append(connection, audit.NewEvent(actor=actor, role=role, action=action, payload=payload))
