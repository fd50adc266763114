"""The server-rendered pages (Jinja2 with autoescape, enhanced by htmx served from here).

Each page reads and acts through the JSON API in process (`web.api`), with the signed-in
person's token from the session cookie; navigation follows the person's roles, and the API
refuses what the roles do not allow whatever a browser sends. Every POST carries the CSRF
token (`web.session`). An action that fails shows the page again with what was typed and
why; one that succeeds redirects (303) to the page showing its result.

This module installs the pages and signs people in and out; the pages are in `web.work`
(a reply's making), `web.approvals` (a draft's page, its review and publishing),
`web.customers`, `web.oversight` (audit, KPIs), `web.care` (the queue
board, queues and agents), `web.alerts` (each person's notifications) and `web.admin`,
their common parts in `web.core`.
"""

from __future__ import annotations

import contextlib
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from web import admin, alerts, approvals, care, customers, oversight, session, work
from web.api import ApiProblem
from web.core import (
    HOME,
    STATIC,
    LoginNeeded,
    api_for,
    error_page,
    form_of,
    person_of,
    render,
    settings_of,
    signed_in,
)

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    for pages in (
        router,
        work.router,
        approvals.router,
        customers.router,
        oversight.router,
        admin.router,
        alerts.router,
        care.router,
    ):
        app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(LoginNeeded)
    async def _login(request: Request, _exc: LoginNeeded) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(ApiProblem)
    async def _refused(request: Request, exc: ApiProblem) -> Response:
        """What a page did not handle itself: the API's answer, as a page."""
        if exc.status == 401:  # the session ended meanwhile
            return await _login(request, LoginNeeded())
        person = await person_of(request)
        title = str(exc.problem.get("title") or "Refused")
        return render(request, "error.html", person, exc.status, title=title, detail=exc.detail)

    @app.exception_handler(session.CsrfRefused)
    async def _csrf(request: Request, exc: session.CsrfRefused) -> Response:
        return error_page(request, 403, "Refused", str(exc))


# --- signing in and out -------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=_local(next), error="", username="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    target = _local(form.get("next", "/"))
    async with api_for(request, None) as api:
        try:
            issued = await api.post(
                "/auth/token",
                data={"username": form.get("username", ""), "password": form.get("password", "")},
            )
        except ApiProblem as problem:
            page = render(
                request,
                "login.html",
                None,
                problem.status if problem.status in (429, 503) else 401,
                next=target,
                error=problem.detail,
                username=form.get("username", ""),
            )
            if "retry_after" in problem.problem:
                page.headers["Retry-After"] = str(problem.problem["retry_after"])
            return page
    response = RedirectResponse(target, status_code=303)
    session.start(response, issued["access_token"], issued["expires_in"], settings_of(request))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Sign out: the session's token is revoked (it no longer works anywhere, even if
    copied), then the cookie is cleared."""
    await form_of(request)
    person = await person_of(request)
    if person is not None:
        async with api_for(request, person) as api:
            with contextlib.suppress(ApiProblem):  # already ended: nothing left to revoke
                await api.post("/auth/logout")
    response = RedirectResponse("/login", status_code=303)
    session.end(response)
    return response


def _local(target: str) -> str:
    """Only a path on this site (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/")
async def home(request: Request) -> Response:
    person = await signed_in(request)
    for role, page in HOME:
        if person.can(role):
            return RedirectResponse(page, status_code=303)
    return render(request, "error.html", person, 403, title="No role", detail="Ask an admin.")
