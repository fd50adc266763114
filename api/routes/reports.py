"""KPIs for supervisors and auditors (`records.reports`), as JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import DatabaseDep, Principal, require_roles
from api.schemas import UtcDatetime
from lifecycle.words import Role
from records import reports
from records.errors import Invalid
from records.fields import Channel

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
    report = await database.read(lambda connection: reports.kpis(connection, window))
    if format == "json":
        return report
    out = io.StringIO()
    csv.writer(out).writerows(reports.csv_rows(report))
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="countersign-kpis.csv"'},
    )
