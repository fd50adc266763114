"""Teams, queues and agents over HTTP (issue 23): supervisors define teams and queues and
give agents their skills and capacity; an agent says whether they are available (a
supervisor may say it for them); a supervisor runs a queue's router round on demand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.engine import Connection

from api.deps import DatabaseDep, Principal, require_roles
from api.schemas import ResourceId
from lifecycle.words import Role
from records import agent_states, board, routing, routing_setup, users
from records.errors import Forbidden, Invalid, NotFound
from records.fields import ONE_LINE, USERNAME_PATTERN
from records.routing_models import (
    AgentPublic,
    AgentSkills,
    PresenceChange,
    QueueCreate,
    QueuePublic,
)
from records.tables import QUEUES, TEAMS
from records.types import utcnow

router = APIRouter(tags=["routing"])
Supervisor = Annotated[Principal, Depends(require_roles(Role.supervisor, Role.admin))]
Staff = Annotated[Principal, Depends(require_roles(Role.agent, Role.supervisor, Role.admin))]
AgentName = Annotated[str, Path(max_length=64, pattern=USERNAME_PATTERN)]


class TeamCreate(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=80, pattern=ONE_LINE)


class TeamPublic(TeamCreate):
    id: int


class BoardRow(BaseModel):
    queue_id: int | None = Field(description="none: the posts in no queue")
    queue: str
    waiting: int = Field(description="posts waiting for an agent")
    with_agents: int = Field(description="assigned and not answered yet")
    oldest_wait_seconds: float | None = Field(description="how long the oldest waiting post has")
    overdue: int = Field(description="waiting or with agents, past their first-response target")
    agents_available: int
    within_target_today: float | None = Field(
        description="of today's posts (UTC) with an outcome, the share answered within target"
    )
    with_outcome_today: int = Field(
        description="today's posts whose first-response outcome is known: met or missed"
    )


class Routed(BaseModel):
    assigned: list[tuple[int, str]] = Field(description="(post id, agent) pairs written")


@router.get("/teams", response_model=list[TeamPublic])
def list_teams(_caller: Staff, database: DatabaseDep) -> list[TeamPublic]:
    with database.engine.connect() as connection:
        rows = connection.execute(select(TEAMS.c.id, TEAMS.c.name).order_by(TEAMS.c.name))
        return [TeamPublic(id=r.id, name=r.name) for r in rows]


@router.post("/teams", response_model=TeamPublic, status_code=status.HTTP_201_CREATED)
def create_team(body: TeamCreate, caller: Supervisor, database: DatabaseDep) -> TeamPublic:
    with database.write() as connection:
        team_id = routing_setup.create_team(connection, body.name, **_by(caller))
    return TeamPublic(id=team_id, name=body.name)


@router.get("/queues", response_model=list[QueuePublic])
def list_queues(_caller: Staff, database: DatabaseDep) -> list[QueuePublic]:
    with database.engine.connect() as connection:
        rows = connection.execute(select(QUEUES).order_by(QUEUES.c.position, QUEUES.c.id))
        return [QueuePublic.model_validate(r, from_attributes=True) for r in rows]


@router.post("/queues", response_model=QueuePublic, status_code=status.HTTP_201_CREATED)
def create_queue(body: QueueCreate, caller: Supervisor, database: DatabaseDep) -> QueuePublic:
    with database.write() as connection:
        queue_id = routing_setup.create_queue(connection, body, **_by(caller))
    return QueuePublic(id=queue_id, **body.model_dump())


@router.put("/queues/{queue_id}", response_model=QueuePublic)
def change_queue(
    queue_id: ResourceId, body: QueueCreate, caller: Supervisor, database: DatabaseDep
) -> QueuePublic:
    with database.write() as connection:
        routing_setup.change_queue(connection, queue_id, body, **_by(caller))
    return QueuePublic(id=queue_id, **body.model_dump())


@router.get("/queues/board", response_model=list[BoardRow])
def queue_board(_caller: Supervisor, database: DatabaseDep) -> list[BoardRow]:
    """The live queue board: per queue, now."""
    with database.engine.connect() as connection:
        return [BoardRow(**row) for row in board.board(connection, utcnow())]


@router.post("/queues/{queue_id}/route", response_model=Routed)
def route_queue(queue_id: ResourceId, _caller: Supervisor, database: DatabaseDep) -> Routed:
    """One round of the queue's router now (the worker runs rounds as posts arrive)."""
    with database.write() as connection:
        return Routed(assigned=routing.route(connection, queue_id))


@router.get("/agents", response_model=list[AgentPublic])
def list_agents(_caller: Supervisor, database: DatabaseDep) -> list[AgentPublic]:
    """Every enabled agent's working state, by name (one never set up: offline)."""
    with database.engine.connect() as connection:
        return [_shown(state) for state in agent_states.states(connection, utcnow())]


@router.get("/agents/{username}", response_model=AgentPublic)
def get_agent(username: AgentName, caller: Staff, database: DatabaseDep) -> AgentPublic:
    _may_see(caller, username)
    with database.engine.connect() as connection:
        _an_agent(connection, username)
        return _public(connection, username)


@router.put("/agents/{username}/skills", response_model=AgentPublic)
def set_skills(
    username: AgentName, body: AgentSkills, caller: Supervisor, database: DatabaseDep
) -> AgentPublic:
    with database.write() as connection:
        _an_agent(connection, username)
        routing_setup.set_skills(connection, username, body, **_by(caller))
        return _public(connection, username)


@router.put("/agents/{username}/presence", response_model=AgentPublic)
def set_presence(
    username: AgentName,
    body: PresenceChange,
    caller: Staff,
    database: DatabaseDep,
    request: Request,
    background: BackgroundTasks,
) -> AgentPublic:
    """An agent's own (or a supervisor's for them): away or offline gives back the posts
    assigned to them that have no draft yet."""
    supervising = caller.has_any(Role.supervisor, Role.admin)
    if username != caller.username and not supervising:
        raise Forbidden("an agent sets their own presence; a supervisor may set anyone's")
    with database.write() as connection:
        _an_agent(connection, username)
        role = Role.agent if username == caller.username else Role.supervisor
        routing.set_presence(
            connection, username, body.presence, actor=caller.username, role=role.value
        )
        changed = _public(connection, username)
    # The router offers posts to an agent just available (and any given back) now.
    background.add_task(request.app.state.lifecycle.nudge_router)
    return changed


def _may_see(caller: Principal, username: str) -> None:
    if username != caller.username and not caller.has_any(Role.supervisor, Role.admin):
        raise Forbidden("an agent sees their own working state; a supervisor anyone's")


def _an_agent(connection: Connection, username: str) -> None:
    found = users.account(connection, username)
    if found is None:
        raise NotFound(f"no user named {username!r}")
    if Role.agent not in found.roles:
        raise Invalid(f"{username!r} is not an agent")


def _public(connection: Connection, username: str) -> AgentPublic:
    [state] = agent_states.states(connection, utcnow(), only=username, disabled=True)
    return _shown(state)


def _shown(state: dict[str, Any]) -> AgentPublic:
    return AgentPublic.model_validate(
        {name: value for name, value in state.items() if name in AgentPublic.model_fields}
    )


def _by(caller: Principal) -> dict[str, str]:
    """Who makes a change to routing, as the audit record names them."""
    role = Role.supervisor if caller.has_any(Role.supervisor) else Role.admin
    return {"actor": caller.username, "role": role.value}
