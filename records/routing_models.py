"""Teams, their queues and their agents' working state (issue 23): the tables and API shapes
of routing (the decision is `lifecycle.routing`, the writing of it `records.routing`).

A queue is defined by rules on a post (channel, language, topic, priority, origin; a list
left empty takes any); a new post joins the first queue, by `position`, whose rules it
meets. A post waiting longer than `overflow_after_minutes` moves to `overflow_to`, a wider
queue. An agent has skills (languages, topics, channels; none listed: any), a presence and
a capacity (open posts at once), and belongs to one team, whose queues they serve.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import StringConstraints, model_validator
from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from lifecycle.routing import Strategy
from lifecycle.words import Presence
from records.fields import (
    FORBID_EXTRA,
    MAX_RESPONSE_MINUTES,
    ONE_LINE,
    Channel,
    Origin,
    Priority,
    created,
)
from records.types import BigId, UTCDateTime

# A language (ISO 639-1) or a topic of the rule set.
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]


class Team(SQLModel, table=True):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("name", name="uq_teams_name"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=80)
    created_at: datetime = created()


class QueueRules(SQLModel):
    """Which posts a queue takes: every list given must hold the post's value."""

    channels: list[Channel] = Field(default_factory=list)
    languages: list[Code] = Field(default_factory=list, max_length=50)
    topics: list[Code] = Field(default_factory=list, max_length=50)
    priorities: list[Priority] = Field(default_factory=list)
    origins: list[Origin] = Field(default_factory=list)


class QueueCreate(QueueRules):
    model_config = FORBID_EXTRA
    name: str = Field(min_length=1, max_length=80, schema_extra={"pattern": ONE_LINE})
    team_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    position: int = Field(default=100, ge=0, le=10_000, description="lower is matched first")
    strategy: Strategy = Strategy.longest_idle
    overflow_to: int | None = Field(default=None, ge=1, le=2**63 - 1)
    overflow_after_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    response_minutes: dict[Priority, Annotated[int, Field(ge=1, le=MAX_RESPONSE_MINUTES)]] = Field(
        default_factory=dict,
        description="first-response target per priority; a priority left out takes the rule"
        " set's (triage.response_minutes)",
    )

    @model_validator(mode="after")
    def _overflow_needs_both(self) -> QueueCreate:
        if (self.overflow_to is None) != (self.overflow_after_minutes is None):
            raise ValueError("overflow_to and overflow_after_minutes go together")
        return self


class QueuePublic(QueueCreate):
    id: int


class Queue(SQLModel, table=True):
    __tablename__ = "queues"
    __table_args__ = (UniqueConstraint("name", name="uq_queues_name"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=80)
    team_id: int | None = Field(default=None, foreign_key="teams.id", sa_type=BigId)
    position: int = Field(default=100)
    strategy: str = Field(default=Strategy.longest_idle.value, sa_type=String(16))
    channels: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    languages: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    topics: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    priorities: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    origins: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    overflow_to: int | None = Field(default=None, foreign_key="queues.id", sa_type=BigId)
    overflow_after_minutes: int | None = None
    response_minutes: dict[str, int] = Field(
        default_factory=dict,
        sa_type=JSON,
        nullable=False,
        sa_column_kwargs={"server_default": "{}"},
    )
    created_at: datetime = created()
    updated_at: datetime = created()


class AgentSkills(SQLModel):
    model_config = FORBID_EXTRA
    team_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    languages: list[Code] = Field(default_factory=list, max_length=50)
    topics: list[Code] = Field(default_factory=list, max_length=50)
    channels: list[Channel] = Field(default_factory=list)
    capacity: int = Field(default=3, ge=1, le=100, description="open posts at once")


class PresenceChange(SQLModel):
    model_config = FORBID_EXTRA
    presence: Presence


class AgentPublic(AgentSkills):
    username: str
    presence: Presence
    presence_since: datetime
    load: int = Field(description="posts assigned to them and not yet answered")


class AgentProfile(SQLModel, table=True):
    """An agent's working state; made, offline, the first time it is asked for."""

    __tablename__ = "agent_profiles"
    __table_args__ = (Index("ix_agent_profiles_team", "team_id", "presence"),)

    username: str = Field(primary_key=True, max_length=64)
    team_id: int | None = Field(default=None, foreign_key="teams.id", sa_type=BigId)
    languages: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    topics: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    channels: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    capacity: int = Field(default=3)
    presence: str = Field(default=Presence.offline.value, sa_type=String(16))
    presence_since: datetime = Field(sa_type=UTCDateTime, nullable=False)
    idle_since: datetime = Field(
        sa_type=UTCDateTime, nullable=False,
        description="their last post assigned, or when they became available",
    )  # fmt: skip
    updated_at: datetime = created()
