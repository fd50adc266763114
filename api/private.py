"""The service's self-descriptions behind sign-in (issue 20, item 8): the API docs, the
OpenAPI schema and the Prometheus metrics tell an outsider what runs here and how busy it
is. With `COUNTERSIGN_PRIVATE_ENDPOINTS` (on by default in production) they answer only a
signed-in caller (a bearer token, or the pages' session); anyone else gets 401.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import principal_of
from api.problems import answer, problem
from records.db import DATABASE_ERRORS, unavailable

PRIVATE = (
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
    "/metrics",
    "/api/v1/metrics",
)


class PrivateEndpoints:
    def __init__(self, app: ASGIApp, session_cookie: str) -> None:
        self.app = app
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in PRIVATE:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        bearer = request.headers.get("authorization", "")
        token = bearer[7:] if bearer.lower().startswith("bearer ") else None
        token = token or request.cookies.get(self.session_cookie)
        state = request.app.state
        try:
            await principal_of(token, state.tokens, state.standings)
        except HTTPException as exc:
            await problem(401, str(exc.detail))(scope, receive, send)
            return
        except DATABASE_ERRORS as exc:
            # Outside the app's exception handlers: answered here as they would.
            gone = unavailable(exc)
            if gone is None:
                raise
            await answer(gone)(scope, receive, send)
            return
        await self.app(scope, receive, send)
