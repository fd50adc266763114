"""Oversight pages: the audit trail (search, verify, export) and the KPI dashboard."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from web import charts
from web.api import ApiProblem
from web.core import (
    api_for,
    error_page,
    filters_of,
    form_of,
    render,
    signed_in,
)
from web.text import as_time

router = APIRouter(include_in_schema=False)


# --- auditors -----------------------------------------------------------------------------

AUDIT_FILTERS = ("draft_id", "actor", "action", "since", "until")


@router.get("/audit")
async def audit(request: Request, cursor: str = "") -> HTMLResponse:
    person = await signed_in(request)
    filters, asked = filters_of(request, AUDIT_FILTERS)
    error = None
    events: list[dict[str, Any]] = []
    next_cursor = None
    async with api_for(request, person) as api:
        try:
            page = await api.get("/audit", **asked, cursor=cursor, limit=100)
            events, next_cursor = page["items"], page["next_cursor"]
        except ApiProblem as problem:
            if problem.status != 422:
                raise
            error = problem  # bad filters: shown beside them
    return render(
        request,
        "audit.html",
        person,
        events=events,
        next_cursor=next_cursor,
        filters=filters,
        query=urlencode(asked),
        error=error,
    )


@router.post("/audit/verify")
async def verify(request: Request) -> HTMLResponse:
    person = await signed_in(request)
    await form_of(request)
    async with api_for(request, person) as api:
        result = await api.get("/audit/verify")
    return render(request, "_verify.html", person, result=result)


@router.get("/audit/export")
async def export(request: Request, format: str = "csv") -> Response:
    """The API's streamed export, passed through to the browser as a download."""
    person = await signed_in(request)
    _, asked = filters_of(request, AUDIT_FILTERS)
    api = api_for(request, person)
    answer = await api.open("/audit/export", format=format, **asked)
    if answer.is_error:
        await api.close(answer)
        return error_page(request, answer.status_code, "Export refused", "Check the filters.")
    return StreamingResponse(
        answer.aiter_raw(),
        media_type=answer.headers.get("content-type", "text/plain"),
        headers={"Content-Disposition": answer.headers.get("content-disposition", "attachment")},
        background=BackgroundTask(api.close, answer),  # once the browser has it all
    )


@router.get("/drafts/{draft_id}/evidence")
async def evidence(request: Request, draft_id: int) -> Response:
    """One reply's evidence package (ZIP), passed through from the API as a download."""
    person = await signed_in(request)
    api = api_for(request, person)
    answer = await api.open(f"/drafts/{draft_id}/evidence")
    if answer.is_error:
        await api.close(answer)
        return error_page(
            request, answer.status_code, "No evidence package", "Auditors and supervisors only."
        )
    return StreamingResponse(
        answer.aiter_raw(),
        media_type="application/zip",
        headers={"Content-Disposition": answer.headers.get("content-disposition", "attachment")},
        background=BackgroundTask(api.close, answer),
    )


# --- supervisors and auditors: KPIs -------------------------------------------------------

KPI_FILTERS = ("since", "until", "channel")


@router.get("/kpis")
async def kpis(request: Request) -> HTMLResponse:
    person = await signed_in(request)
    filters, asked = filters_of(request, KPI_FILTERS)
    async with api_for(request, person) as api:

        async def report_of() -> tuple[Any, ApiProblem | None]:
            try:
                return await api.get("/reports/kpis", **asked), None
            except ApiProblem as problem:
                if problem.status != 422:
                    raise
                return await api.get("/reports/kpis"), problem

        # The two reports are independent reads: asked together (on PostgreSQL each on a
        # thread of its own, so the database works on both at once).
        (report, error), plan = await asyncio.gather(report_of(), api.get("/reports/staffing"))
    return render(
        request,
        "kpis.html",
        person,
        report=report,
        filters=filters,
        query=urlencode(asked),
        charts=_kpi_charts(report),
        staffing=plan,
        staffing_chart=_staffing_chart(plan),
        error=error,
    )


TRENDING_TOPICS = 5  # the topics a trend chart shows, the most frequent


def _staffing_chart(plan: list[dict[str, Any]]) -> charts.Chart:
    """Agents needed each hour of the coming week, every queue together."""
    hours: dict[str, float] = {}
    for queue in plan:
        for hour in queue["hours"]:
            hours[hour["hour"]] = hours.get(hour["hour"], 0) + hour["agents"]
    groups: list[tuple[str, list[float | None]]] = [
        (_hour_label(at), [float(n)]) for at, n in sorted(hours.items())
    ]
    midnight = next((n for n, at in enumerate(sorted(hours)) if as_time(at).hour == 0), 0)
    return charts.bars(
        "Agents needed per hour, coming week (UTC)", groups, ["agents"], counts=True,
        label_every=24, label_from=midnight,
    )  # fmt: skip


def _hour_label(at: str) -> str:
    when = as_time(at)
    return when.strftime("%a %d %b") if when.hour == 0 else when.strftime("%a %H:00")


def _kpi_charts(report: dict[str, Any]) -> list[charts.Chart]:
    days: dict[str, list[float | None]] = {}
    for row in report["volumes"]:
        received, published = days.setdefault(row["day"], [0.0, 0.0])
        days[row["day"]] = [(received or 0) + row["received"], (published or 0) + row["published"]]

    def minutes(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 60, 1)

    decisions = report["decisions"]["counts"]
    totals: dict[str, int] = {}
    for day in report["trends"]:
        for topic, n in day["topics"].items():
            totals[topic] = totals.get(topic, 0) + n
    topics = sorted(totals, key=lambda t: (-totals[t], t))[:TRENDING_TOPICS]
    return [
        charts.bars(
            "Posts per topic per day",
            [(d["day"], [float(d["topics"].get(t, 0)) for t in topics]) for d in report["trends"]],
            topics,
            counts=True,
        ),
        charts.bars(
            "Posts received and replies published per day",
            sorted(days.items()),
            ["received", "published"],
            counts=True,
        ),
        charts.bars(
            "Time in review per stage (minutes)",
            [
                (s["stage"], [minutes(s["p50_seconds"]), minutes(s["p90_seconds"])])
                for s in report["stages"]
            ],
            ["p50", "p90"],
            " min",
        ),
        charts.bars(
            "Decisions",
            [(name.replace("_", " "), [float(count)]) for name, count in sorted(decisions.items())],
            ["decisions"],
            counts=True,
        ),
    ]


@router.get("/kpis/staffing.csv")
async def staffing_csv(request: Request) -> Response:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        text = await api.get("/reports/staffing", format="csv")
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="countersign-staffing.csv"'},
    )


@router.get("/kpis.csv")
async def kpis_csv(request: Request) -> Response:
    person = await signed_in(request)
    _, asked = filters_of(request, KPI_FILTERS)
    async with api_for(request, person) as api:
        text = await api.get("/reports/kpis", **asked, format="csv")
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="countersign-kpis.csv"'},
    )
