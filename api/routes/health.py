"""Liveness, readiness and Prometheus metrics (open, no token)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, TemporalDep
from api.metrics import Metrics
from api.schemas import Health, Readiness
from countersign import tracing

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(database: DatabaseDep, temporal: TemporalDep) -> JSONResponse:
    database_ok = await run_in_threadpool(_database_ok, database)
    temporal_ok = await temporal.healthy()
    body = Readiness(ready=database_ok and temporal_ok, database=database_ok, temporal=temporal_ok)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


def _database_ok(database: DatabaseDep) -> bool:
    try:
        with tracing.untraced(), database.read_session() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
