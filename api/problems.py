"""Every error leaves the API as `application/problem+json` (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.metrics import route_template
from api.signin import Throttled
from policies.budget import CheckOverBudget
from records.db import DATABASE_ERRORS, unavailable
from records.errors import CountersignError
from records.passwords import HashingBusy

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("countersign.api")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(
        jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def answer(exc: CountersignError) -> JSONResponse:
    """The problem an error that carries its own status answers, with its headers."""
    return problem(exc.status_code, exc.detail, title=exc.title, headers=exc.headers(), **exc.extra)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    @app.exception_handler(CountersignError)
    async def _domain(_request: Request, exc: CountersignError) -> JSONResponse:
        return answer(exc)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        """The database out of reach (`records.db.out_of_reach`: a restart, a failover, a
        full pool) is a 503 to come back from: a transaction that lost its connection is
        rolled back, and an action whose commit went through but whose answer was lost is
        recognised on its retry (its Idempotency-Key, or the update id derived from the
        request). Any other database error is a fault of ours: a 500, logged in full."""
        gone = unavailable(exc)
        if gone is None:
            return await _unexpected(request, exc)
        log.warning("database unavailable on %s %s (%s)", request.method,
                    route_template(request.scope), type(exc).__name__)  # fmt: skip
        return answer(gone)

    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _database)

    @app.exception_handler(CheckOverBudget)
    async def _over_budget(_request: Request, exc: CheckOverBudget) -> JSONResponse:
        return problem(
            422, str(exc), title="Policy check over budget", budget_ms=round(exc.budget * 1000)
        )

    @app.exception_handler(Throttled)
    async def _throttled(_request: Request, exc: Throttled) -> JSONResponse:
        return problem(
            429,
            str(exc),
            title="Too many requests",
            headers={"Retry-After": str(exc.retry_after)},
            retry_after=exc.retry_after,
        )

    @app.exception_handler(HashingBusy)
    async def _busy(_request: Request, exc: HashingBusy) -> JSONResponse:
        return problem(503, str(exc), headers={"Retry-After": "2"})

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        return problem(422, summary or "the request is not valid", errors=errors)

    app.add_exception_handler(Exception, _unexpected)
