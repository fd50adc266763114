"""The agents' working state as read (issue 23): each enabled agent's team, skills,
capacity, presence and load (posts assigned to them and not answered), in one query. An
agent whose profile was never made reads as its defaults, offline, and nothing is written:
a page or a client reading presence takes no write lock (the profile is made when their
skills or presence are first set, `records.routing.profile`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from lifecycle.words import PostStatus, Presence, Role
from records.routing_models import AgentSkills
from records.tables import AGENTS, POSTS, USER_ROLES, USERS

# An agent never set up: no team, any language, topic and channel, the default capacity.
NEW_AGENT = AgentSkills().model_dump(mode="json")


def agent_role() -> ColumnElement[bool]:
    """The user holds the agent role."""
    return exists().where(USER_ROLES.c.user_id == USERS.c.id, USER_ROLES.c.role == Role.agent.value)


def enabled_agent() -> ColumnElement[bool]:
    """Who takes posts: an enabled user holding the agent role (the router's rounds, the
    board's count of agents available and this module's list agree on it)."""
    return USERS.c.disabled.is_(False) & agent_role()


def loads() -> Any:
    """A subquery: (assignee, n) of the posts assigned to each agent and not answered yet,
    what counts against their capacity."""
    return (
        select(POSTS.c.assignee, func.count().label("n"))
        .where(POSTS.c.status == PostStatus.assigned.value)
        .group_by(POSTS.c.assignee)
        .subquery()
    )


def states(
    connection: Connection, now: datetime, only: str | None = None, *, disabled: bool = False
) -> list[dict[str, Any]]:
    """Every enabled agent's state by name (or the one `only` names: none if they are not
    an agent); `disabled`: a disabled agent's too (whose presence a supervisor may still
    set, to give back the posts they held)."""
    load = loads()
    query = (
        select(USERS.c.username, AGENTS, func.coalesce(load.c.n, 0).label("load"))
        .select_from(
            USERS.outerjoin(AGENTS, AGENTS.c.username == USERS.c.username)
            .outerjoin(load, load.c.assignee == USERS.c.username)
        )
        .where(agent_role() if disabled else enabled_agent())
        .order_by(USERS.c.username)
    )  # fmt: skip
    if only is not None:
        query = query.where(USERS.c.username == only)
    found = []
    for row in connection.execute(query):
        fields = dict(row._mapping)
        if fields["presence"] is None:  # no profile yet
            fields |= {**NEW_AGENT, "presence": Presence.offline.value, "presence_since": now}
        fields["username"] = row[0]
        found.append(fields)
    return found
