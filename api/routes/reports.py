"""KPIs for supervisors and auditors (`records.reports`), as JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.engine import Connection

from api.deps import DatabaseDep, Principal, require_roles
from api.policy import PoliciesDep
from api.schemas import UtcDatetime
from lifecycle.words import Role
from policies import staffing
from policies.staffing import OCCUPANCIES, SERVICE_LEVELS, SHRINKAGES
from records import reports, triaged
from records import staffing as records_staffing
from records.errors import Invalid
from records.fields import Channel, Priority
from records.staffing import HandleFrom
from records.types import utcnow

router = APIRouter(prefix="/reports", tags=["reports"])
KpiReader = Annotated[Principal, Depends(require_roles(Role.supervisor, Role.auditor))]


class Timing(BaseModel):
    count: int
    p50_seconds: float | None
    p90_seconds: float | None


class StageFigures(BaseModel):
    stage: str
    reviews: int
    closed: int
    p50_seconds: float | None
    p90_seconds: float | None
    sla_breaches: int
    breach_rate: float


class DecisionFigures(BaseModel):
    total: int
    counts: dict[str, int]
    rates: dict[str, float]


class BlockingRule(BaseModel):
    rule_id: str
    blocked: int


class Volume(BaseModel):
    channel: str
    day: str
    received: int
    published: int


class DismissalFigures(BaseModel):
    total: int
    by_reason: dict[str, int]
    by_triage: int = Field(description="of the total, dismissed by triage as they arrived")


class TargetCell(BaseModel):
    queue: str
    priority: str
    received: int
    met: int
    missed: int
    pending: int
    dismissed: int
    within_target: float | None = Field(description="met / (met + missed); none: no outcome yet")


class ResponseFigures(BaseModel):
    received: int
    needing_reply: int = Field(description="received and not dismissed")
    answered: int
    response_rate: float | None = Field(description="answered / needing_reply")
    within_target: float | None
    per_queue: list[TargetCell]


class DayTrend(BaseModel):
    day: str
    posts: int
    topics: dict[str, int]
    sentiment: float | None = Field(default=None, description="mean VADER compound score")
    scored: int = 0


class PublicRiskFigures(BaseModel):
    flagged: int
    answered: int
    p50_seconds: float | None = Field(description="arrival to first reply")
    p90_seconds: float | None
    within_target: float | None


class Kpis(BaseModel):
    since: AwareDatetime | None
    until: AwareDatetime | None
    channel: str | None
    first_response: Timing
    stages: list[StageFigures]
    decisions: DecisionFigures
    top_blocking_rules: list[BlockingRule]
    volumes: list[Volume]
    dismissals: DismissalFigures
    targets: ResponseFigures = Field(description="response rate and first-response targets")
    trends: list[DayTrend]
    public_risk: PublicRiskFigures


@router.get(
    "/kpis",
    response_model=Kpis,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
async def kpis(
    _caller: KpiReader,
    database: DatabaseDep,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    channel: Channel | None = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """First-response time, time in each stage, SLA breaches, decision rates with the rules
    that blocked most, and volumes per channel and day, for posts, reviews and decisions in
    [`since`, `until`)."""
    if since and until and since >= until:
        raise Invalid("since must be before until", field="since")
    window = reports.Window(since=since, until=until, channel=channel.value if channel else None)
    # Figures over every post of the window: a scan, on a thread at once (`Database.read`).
    report = await database.read(lambda connection: reports.kpis(connection, window), short=False)
    if format == "json":
        return report
    out = io.StringIO()
    csv.writer(out).writerows(reports.csv_rows(report))
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="countersign-kpis.csv"'},
    )


class StaffingHour(BaseModel):
    hour: AwareDatetime = Field(description="the hour's start, UTC")
    arrivals: float = Field(description="posts expected")
    agents: int = Field(description="agents to schedule, shrinkage included")


class QueueStaffing(BaseModel):
    queue_id: int | None = Field(description="none: the posts in no queue")
    queue: str
    handle_minutes: float = Field(description="assigned to reply submitted, on average")
    handle_from: HandleFrom = Field(description="measured on the queue, on all, or a default")
    staffed_for: Priority = Field(description="the priority whose target the staffing meets")
    wait_minutes: float = Field(description="the wait for an agent the staffing allows")
    concurrency: int = Field(description="posts an agent works at once")
    hours: list[StaffingHour]


@router.get(
    "/staffing",
    response_model=list[QueueStaffing],
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
async def staffing_forecast(
    _caller: KpiReader,
    database: DatabaseDep,
    policies: PoliciesDep,
    service_level: Annotated[
        float,
        Query(ge=SERVICE_LEVELS[0], le=SERVICE_LEVELS[1], description="share within the wait"),
    ] = 0.8,
    max_occupancy: Annotated[
        float, Query(ge=OCCUPANCIES[0], le=OCCUPANCIES[1], description="the most an agent is busy")
    ] = 0.85,
    shrinkage: Annotated[
        float, Query(ge=SHRINKAGES[0], le=SHRINKAGES[1], description="share of paid time away")
    ] = 0.3,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Per queue, the coming week hour by hour: the posts expected (the mean of the same
    hour of the last four weeks) and the agents needed to answer them within target
    (Erlang C, for agents who work several posts at once)."""
    target = staffing.Target(
        service_level=service_level, max_occupancy=max_occupancy, shrinkage=shrinkage
    )

    def read(connection: Connection) -> list[dict[str, Any]]:
        targets = triaged.rules_in_force(connection, policies.book).response_minutes
        return records_staffing.forecast(connection, utcnow(), targets, target)

    plan = await database.read(read, short=False)  # four weeks of posts
    if format == "json":
        return plan
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["queue", "hour_utc", "arrivals", "agents", "handle_minutes", "concurrency"])
    for queue in plan:
        for hour in queue["hours"]:
            writer.writerow([
                queue["queue"], hour["hour"].isoformat(), hour["arrivals"], hour["agents"],
                queue["handle_minutes"], queue["concurrency"],
            ])  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="countersign-staffing.csv"'},
    )
