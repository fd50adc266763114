"""The server-rendered pages (Jinja2 with autoescape, enhanced by htmx served from here).

Each page reads and acts through the JSON API in process (`web.api`), with the signed-in
person's token from the session cookie; navigation follows the person's roles, and the API
refuses what the roles do not allow whatever a browser sends. Every POST carries the CSRF
token (`web.session`). An action that fails shows the page again with what was typed and
why; one that succeeds redirects (303) to the page showing its result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from api.deps import current_principal
from records.settings import Settings
from web import charts, session
from web.api import Api, ApiProblem
from web.text import marked, redline, relative

PAGES = Path(__file__).resolve().parent.parent / "templates" / "pages"
STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)
_jinja = Environment(
    loader=FileSystemLoader(PAGES), autoescape=True, undefined=StrictUndefined, trim_blocks=True
)
_jinja.filters["relative"] = lambda when: relative(when, datetime.now(UTC))
_jinja.filters["when"] = lambda when: (
    datetime.fromisoformat(when.replace("Z", "+00:00")).strftime("%d %b %H:%M UTC") if when else ""
)
_jinja.globals["marked"] = marked


@dataclass(frozen=True)
class Person:
    username: str
    roles: frozenset[str]
    token: str

    def can(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)


# Where each role starts, in this order of preference, and the navigation it sees.
HOME = (
    ("agent", "/inbox"),
    ("supervisor", "/inbox"),
    ("comms", "/reviews"),
    ("legal", "/reviews"),
    ("publisher", "/publishing"),
    ("auditor", "/audit"),
    ("admin", "/admin/users"),
)
NAV = (
    ("/inbox", "Inbox", ("agent", "supervisor")),
    ("/drafts", "My drafts", ("agent",)),
    ("/reviews", "Reviews", ("comms", "legal")),
    ("/publishing", "Publishing", ("publisher",)),
    ("/audit", "Audit", ("auditor", "admin")),
    ("/kpis", "KPIs", ("supervisor", "auditor")),
    ("/admin/users", "People", ("admin",)),
    ("/admin/channels", "Channels", ("admin",)),
    ("/admin/rules", "Rules", ("admin",)),
)


class LoginNeeded(Exception):
    pass


def install(app: FastAPI) -> None:
    app.include_router(router)
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
        person = await _person(request)
        title = str(exc.problem.get("title") or "Refused")
        return _render(request, "error.html", person, exc.status, title=title, detail=exc.detail)

    @app.exception_handler(session.CsrfRefused)
    async def _csrf(request: Request, exc: session.CsrfRefused) -> Response:
        return _error_page(request, 403, "Refused", str(exc))


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _person(request: Request) -> Person | None:
    token = request.cookies.get(session.SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = await current_principal(
            token, request.app.state.tokens, request.app.state.database
        )
    except HTTPException:
        return None
    return Person(principal.username, frozenset(r.value for r in principal.roles), token)


async def _signed_in(request: Request) -> Person:
    person = await _person(request)
    if person is None:
        raise LoginNeeded
    return person


def _api(request: Request, person: Person | None) -> Api:
    return Api(request.app, person.token if person else None)


def _render(
    request: Request, name: str, person: Person | None, code: int = 200, **context: Any
) -> HTMLResponse:
    settings = _settings(request)
    nav = [(href, label) for href, label, roles in NAV if person and person.can(*roles)]
    html = _jinja.get_template(name).render(
        me=person,
        nav=nav,
        path=request.url.path,
        csrf=session.csrf_token(request, settings),
        notice=request.query_params.get("notice", ""),
        **context,
    )
    response = HTMLResponse(html, status_code=code)
    session.remember_seed(request, response, settings)
    return response


def _error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return _render(request, "error.html", None, status, title=title, detail=detail)


def _done(url: str, notice: str) -> RedirectResponse:
    joiner = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{joiner}{urlencode({'notice': notice})}", status_code=303)


async def _form(request: Request) -> dict[str, str]:
    """The posted form's text fields, once its CSRF token is checked."""
    form = await _checked(request)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _checked(request: Request) -> FormData:
    """The posted form (with its repeated fields), once its CSRF token is checked."""
    await session.check_csrf(request, _settings(request))
    return await request.form()


def _all(form: FormData, name: str) -> list[str]:
    """Every value of a repeated field (checkboxes)."""
    return [value for value in form.getlist(name) if isinstance(value, str)]


# --- signing in and out -------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return _render(request, "login.html", None, next=_local(next), error="", username="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    target = _local(form.get("next", "/"))
    async with _api(request, None) as api:
        try:
            issued = await api.post(
                "/auth/token",
                data={"username": form.get("username", ""), "password": form.get("password", "")},
            )
        except ApiProblem as problem:
            return _render(
                request,
                "login.html",
                None,
                401,
                next=target,
                error=problem.detail,
                username=form.get("username", ""),
            )
    response = RedirectResponse(target, status_code=303)
    session.start(response, issued["access_token"], issued["expires_in"], _settings(request))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request)
    response = RedirectResponse("/login", status_code=303)
    session.end(response)
    return response


def _local(target: str) -> str:
    """Only a path on this site (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/")
async def home(request: Request) -> Response:
    person = await _signed_in(request)
    for role, page in HOME:
        if person.can(role):
            return RedirectResponse(page, status_code=303)
    return _render(request, "error.html", person, 403, title="No role", detail="Ask an admin.")


# --- agents: the inbox, the editor, my drafts ---------------------------------------------


@router.get("/inbox")
async def inbox(
    request: Request,
    status: str = "new",
    channel: str = "",
    priority: str = "",
    cursor: str = "",
) -> HTMLResponse:
    person = await _signed_in(request)
    filters = {"status": status, "channel": channel, "priority": priority}
    async with _api(request, person) as api:
        page = await api.get("/posts", **filters, cursor=cursor, limit=50)
    return _render(
        request,
        "inbox.html",
        person,
        posts=page["items"],
        next_cursor=page["next_cursor"],
        filters=filters,
        now=datetime.now(UTC),
    )


@router.post("/posts/{post_id}/take")
async def take(request: Request, post_id: int) -> Response:
    person = await _signed_in(request)
    form = await _form(request)
    body = {"assignee": form["assignee"]} if form.get("assignee") else None
    async with _api(request, person) as api:
        try:
            await api.post(f"/posts/{post_id}/assign", json=body)
        except ApiProblem as problem:
            return _done("/inbox", f"Not assigned: {problem.detail}")
    who = form.get("assignee") or "you"
    return _done("/inbox", f"Post {post_id} assigned to {who}.")


@router.get("/posts/{post_id}/reply")
async def new_reply(request: Request, post_id: int, template: str = "") -> HTMLResponse:
    person = await _signed_in(request)
    async with _api(request, person) as api:
        post = await api.get(f"/posts/{post_id}")
        choices = (await api.get("/templates", channel=post["channel"]))["items"]
    chosen = next((t for t in choices if t["id"] == template), None)
    return _render(
        request,
        "new_reply.html",
        person,
        post=post,
        templates=choices,
        chosen=chosen,
        values={},
        error=None,
        body="",
    )


@router.post("/posts/{post_id}/reply")
async def create_reply(request: Request, post_id: int) -> Response:
    person = await _signed_in(request)
    form = await _form(request)
    template_id = form.get("template_id", "")
    async with _api(request, person) as api:
        post = await api.get(f"/posts/{post_id}")
        choices = (await api.get("/templates", channel=post["channel"]))["items"]
        chosen = next((t for t in choices if t["id"] == template_id), None)
        values = {k.removeprefix("var_"): v for k, v in form.items() if k.startswith("var_")}
        request_body: dict[str, Any] = {"post_id": post_id}
        if chosen:
            request_body |= {"template_id": template_id, "variables": _typed(chosen, values)}
        else:
            request_body["body"] = form.get("body", "")
        try:
            draft = await api.post("/drafts", json=request_body)
        except ApiProblem as problem:
            return _render(
                request,
                "new_reply.html",
                person,
                422,
                post=post,
                templates=choices,
                chosen=chosen,
                values=values,
                error=problem,
                body=form.get("body", ""),
            )
    return _done(f"/drafts/{draft['id']}/edit", "Draft saved. Check it, then submit.")


def _typed(template: dict[str, Any], values: dict[str, str]) -> dict[str, str | int]:
    """Form values as the template's variables want them (numbers as numbers)."""
    typed: dict[str, str | int] = {}
    for variable in template["variables"]:
        value = values.get(variable["name"], "")
        numeric = variable["type"] == "number" and value.strip().lstrip("-").isdigit()
        typed[variable["name"]] = int(value) if numeric else value
    return typed


@router.get("/drafts")
async def my_drafts(request: Request, status: str = "", cursor: str = "") -> HTMLResponse:
    person = await _signed_in(request)
    async with _api(request, person) as api:
        page = await api.get(
            "/drafts", author=person.username, status=status, cursor=cursor, limit=50
        )
    return _render(
        request,
        "drafts.html",
        person,
        drafts=page["items"],
        next_cursor=page["next_cursor"],
        status=status,
        now=datetime.now(UTC),
    )


@router.get("/drafts/{draft_id}/edit")
async def edit_page(request: Request, draft_id: int) -> HTMLResponse:
    person = await _signed_in(request)
    async with _api(request, person) as api:
        return await _editor(request, person, api, draft_id)


@router.post("/drafts/{draft_id}/edit")
async def save_draft(request: Request, draft_id: int) -> Response:
    """Save the text (a new version when it changed), then submit it if asked."""
    person = await _signed_in(request)
    form = await _form(request)
    body = form.get("body", "")
    async with _api(request, person) as api:
        draft = await api.get(f"/drafts/{draft_id}")
        try:
            if body != draft["body"]:
                expected = int(form.get("version", draft["version"]))
                await api.put(
                    f"/drafts/{draft_id}", json={"body": body, "expected_version": expected}
                )
            if form.get("action") == "submit":
                await api.post(f"/drafts/{draft_id}/submit")
                return _done(f"/drafts/{draft_id}", "Submitted for review.")
        except ApiProblem as problem:
            return await _editor(request, person, api, draft_id, body, problem)
    return _done(f"/drafts/{draft_id}/edit", "Saved.")


async def _editor(
    request: Request,
    person: Person,
    api: Api,
    draft_id: int,
    body: str | None = None,
    error: ApiProblem | None = None,
) -> HTMLResponse:
    """The editor with `body` (else the draft's text) checked, and why an action failed."""
    draft = await api.get(f"/drafts/{draft_id}")
    post = await api.get(f"/posts/{draft['post_id']}")
    body = draft["body"] if body is None else body
    check = await api.post("/policies/check", json={"body": body, "post_id": post["id"]})
    return _render(
        request,
        "editor.html",
        person,
        error.status if error else 200,
        draft=draft,
        post=post,
        body=body,
        check=check,
        error=error,
    )


@router.post("/check")
async def live_check(request: Request) -> HTMLResponse:
    """The editor's live check (htmx, as the agent types): findings marked in the text, the
    route, and the channel's character count."""
    person = await _signed_in(request)
    form = await _form(request)
    body, post_id = form.get("body", ""), int(form.get("post_id", "0") or 0)
    async with _api(request, person) as api:
        try:
            check = await api.post("/policies/check", json={"body": body, "post_id": post_id})
            post = await api.get(f"/posts/{post_id}")
        except ApiProblem as problem:
            return _render(request, "_message.html", person, 200, message=problem.detail)
    return _render(request, "_check.html", person, body=body, check=check, post=post)


# --- a draft: its page, decisions, publishing, withdrawing --------------------------------


@router.get("/drafts/{draft_id}")
async def draft_page(request: Request, draft_id: int) -> HTMLResponse:
    person = await _signed_in(request)
    async with _api(request, person) as api:
        return await _draft(request, person, api, draft_id)


async def _draft(
    request: Request,
    person: Person,
    api: Api,
    draft_id: int,
    comment: str = "",
    error: ApiProblem | None = None,
) -> HTMLResponse:
    """A draft's page, with what a reviewer typed and why an action failed."""
    draft = await api.get(f"/drafts/{draft_id}")
    post = await api.get(f"/posts/{draft['post_id']}")
    # The redline is against the last version reviewers decided on (what they saw), else
    # against the version before this one.
    earlier = draft["versions"][:-1]
    decided = {d["version"] for d in draft["decisions"]}
    baseline = ([v for v in earlier if v["version"] in decided] or earlier or [None])[-1]
    return _render(
        request,
        "draft.html",
        person,
        error.status if error else 200,
        draft=draft,
        post=post,
        baseline=baseline,
        changes=redline(baseline["body"], draft["body"]) if baseline else None,
        actions=_actions(person, draft),
        now=datetime.now(UTC),
        comment=comment,
        error=error,
    )


def _actions(person: Person, draft: dict[str, Any]) -> set[str]:
    """What the page offers this person (the API decides whether it is allowed)."""
    status, mine = draft["status"], draft["author"] == person.username
    offered = set()
    if mine and status in ("draft", "changes_requested"):
        offered.add("edit")
    if status == "in_review" and not mine and person.can(draft["stage"] or ""):
        offered.add("decide")
    if status in ("approved", "publish_failed") and person.can("publisher") and not mine:
        offered.add("publish")
    withdrawable = ("draft", "in_review", "changes_requested", "approved", "scheduled")
    if (mine or person.can("supervisor")) and status in (*withdrawable, "publish_failed"):
        offered.add("withdraw")
    if status == "publish_failed" and person.can("publisher"):
        offered.add("withdraw")
    return offered


async def _act(request: Request, draft_id: int, call: Any, notice: str) -> Response:
    person = await _signed_in(request)
    form = await _form(request)
    async with _api(request, person) as api:
        try:
            await call(api, form)
        except ApiProblem as problem:
            try:
                return await _draft(
                    request, person, api, draft_id, form.get("comment", ""), problem
                )
            except ApiProblem:
                raise problem from None  # no draft to show it on: the refusal alone
    return _done(f"/drafts/{draft_id}", notice)


@router.post("/drafts/{draft_id}/decide")
async def decide(request: Request, draft_id: int) -> Response:
    async def send(api: Api, form: dict[str, str]) -> None:
        decision = {
            "stage": form.get("stage", ""),
            "decision": form.get("decision", ""),
            "version": int(form.get("version", "0") or 0),
        }
        if form.get("comment", "").strip():
            decision["comment"] = form["comment"].strip()
        await api.post(f"/drafts/{draft_id}/decisions", json=decision)

    return await _act(request, draft_id, send, "Decision recorded.")


@router.post("/drafts/{draft_id}/submit")
async def submit(request: Request, draft_id: int) -> Response:
    async def send(api: Api, _form: dict[str, str]) -> None:
        await api.post(f"/drafts/{draft_id}/submit")

    return await _act(request, draft_id, send, "Submitted for review.")


@router.post("/drafts/{draft_id}/publish")
async def publish(request: Request, draft_id: int) -> Response:
    async def send(api: Api, form: dict[str, str]) -> None:
        at = form.get("at", "").strip()
        body = {"at": _utc(at)} if at else None
        await api.post(f"/drafts/{draft_id}/publish", json=body)

    return await _act(request, draft_id, send, "Sent to the channel.")


def _utc(local: str) -> str:
    """A `datetime-local` value (pages show times in UTC), as UTC; else as typed, for the
    API to refuse with its reason."""
    try:
        when = datetime.fromisoformat(local)
    except ValueError:
        return local
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


@router.post("/drafts/{draft_id}/withdraw")
async def withdraw(request: Request, draft_id: int) -> Response:
    async def send(api: Api, _form: dict[str, str]) -> None:
        await api.post(f"/drafts/{draft_id}/withdraw")

    return await _act(request, draft_id, send, "Withdrawn.")


# --- reviewers and publishers: their queues -----------------------------------------------


@router.get("/reviews")
async def reviews(request: Request, cursor: str = "") -> HTMLResponse:
    person = await _signed_in(request)
    async with _api(request, person) as api:
        page = await api.get("/reviews", cursor=cursor, limit=50)
    template = "_review_rows.html" if request.headers.get("HX-Request") else "reviews.html"
    return _render(
        request,
        template,
        person,
        drafts=page["items"],
        next_cursor=page["next_cursor"],
        now=datetime.now(UTC),
    )


@router.get("/publishing")
async def publishing(request: Request) -> HTMLResponse:
    person = await _signed_in(request)
    async with _api(request, person) as api:
        ready = (await api.get("/drafts", status="approved", limit=100))["items"]
        failed = (await api.get("/drafts", status="publish_failed", limit=100))["items"]
        scheduled = (await api.get("/drafts", status="scheduled", limit=100))["items"]
    return _render(
        request,
        "publishing.html",
        person,
        ready=ready,
        failed=failed,
        scheduled=scheduled,
        now=datetime.now(UTC),
    )


# --- auditors -----------------------------------------------------------------------------

AUDIT_FILTERS = ("draft_id", "actor", "action", "since", "until")


@router.get("/audit")
async def audit(request: Request, cursor: str = "") -> HTMLResponse:
    person = await _signed_in(request)
    filters = {k: request.query_params.get(k, "") for k in AUDIT_FILTERS}
    error = None
    events: list[dict[str, Any]] = []
    next_cursor = None
    async with _api(request, person) as api:
        try:
            page = await api.get("/audit", **filters, cursor=cursor, limit=100)
            events, next_cursor = page["items"], page["next_cursor"]
        except ApiProblem as problem:
            if problem.status != 422:
                raise
            error = problem  # bad filters: shown beside them
    query = urlencode({k: v for k, v in filters.items() if v})
    return _render(
        request,
        "audit.html",
        person,
        422 if error else 200,
        events=events,
        next_cursor=next_cursor,
        filters=filters,
        query=query,
        error=error,
    )


@router.post("/audit/verify")
async def verify(request: Request) -> HTMLResponse:
    person = await _signed_in(request)
    await _form(request)
    async with _api(request, person) as api:
        result = await api.get("/audit/verify")
    return _render(request, "_verify.html", person, result=result)


@router.get("/audit/export")
async def export(request: Request, format: str = "csv") -> Response:
    """The API's streamed export, passed through to the browser as a download."""
    person = await _signed_in(request)
    filters = {k: v for k in AUDIT_FILTERS if (v := request.query_params.get(k))}
    api = _api(request, person)
    stream = api.stream("/audit/export", format=format, **filters)
    answer = await stream.__aenter__()
    if answer.is_error:
        await stream.__aexit__(None, None, None)
        await api.__aexit__()
        return _error_page(request, answer.status_code, "Export refused", "Check the filters.")

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in answer.aiter_bytes():
                yield chunk
        finally:
            await stream.__aexit__(None, None, None)
            await api.__aexit__()

    headers = {"Content-Disposition": answer.headers.get("content-disposition", "attachment")}
    media = answer.headers.get("content-type", "text/plain")
    return StreamingResponse(body(), media_type=media, headers=headers)


# --- supervisors and auditors: KPIs -------------------------------------------------------

KPI_FILTERS = ("since", "until", "channel")


@router.get("/kpis")
async def kpis(request: Request) -> HTMLResponse:
    person = await _signed_in(request)
    filters = {k: request.query_params.get(k, "") for k in KPI_FILTERS}
    asked = {k: _utc(v) if k != "channel" and v else v for k, v in filters.items()}
    async with _api(request, person) as api:
        try:
            report, error = await api.get("/reports/kpis", **asked), None
        except ApiProblem as problem:
            if problem.status != 422:
                raise
            report, error = await api.get("/reports/kpis"), problem
    return _render(
        request,
        "kpis.html",
        person,
        422 if error else 200,
        report=report,
        filters=filters,
        query=urlencode({k: v for k, v in asked.items() if v}),
        charts=_kpi_charts(report),
        error=error,
    )


def _kpi_charts(report: dict[str, Any]) -> list[charts.Chart]:
    days: dict[str, list[float | None]] = {}
    for row in report["volumes"]:
        received, published = days.setdefault(row["day"], [0.0, 0.0])
        days[row["day"]] = [(received or 0) + row["received"], (published or 0) + row["published"]]

    def minutes(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 60, 1)

    decisions = report["decisions"]["counts"]
    return [
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


@router.get("/kpis.csv")
async def kpis_csv(request: Request) -> Response:
    person = await _signed_in(request)
    asked = {k: v for k in KPI_FILTERS if (v := request.query_params.get(k))}
    async with _api(request, person) as api:
        text = await api.get("/reports/kpis", **asked, format="csv")
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="countersign-kpis.csv"'},
    )


# --- admins: people, channels, rules ------------------------------------------------------

ROLES = ("agent", "comms", "legal", "publisher", "supervisor", "auditor", "admin")


@router.get("/admin/users")
async def people(request: Request) -> HTMLResponse:
    person = await _signed_in(request)
    async with _api(request, person) as api:
        return await _people(request, person, api)


async def _people(
    request: Request,
    person: Person,
    api: Api,
    error: ApiProblem | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    listing = await api.get("/users")
    return _render(
        request,
        "admin_users.html",
        person,
        error.status if error else 200,
        users=listing["items"],
        roles=ROLES,
        error=error,
        typed=typed or {},
    )


@router.post("/admin/users")
async def add_person(request: Request) -> Response:
    person = await _signed_in(request)
    form = await _checked(request)
    typed = {k: v for k, v in form.items() if isinstance(v, str) and k != "password"}
    body = {
        "username": typed.get("username", ""),
        "display_name": typed.get("display_name", ""),
        "password": str(form.get("password", "")),
        "roles": _all(form, "roles"),
    }
    async with _api(request, person) as api:
        try:
            await api.post("/users", json=body)
        except ApiProblem as problem:
            return await _people(request, person, api, problem, typed)
    return _done("/admin/users", f"{body['username']} can now sign in.")


@router.post("/admin/users/{username}")
async def change_person(request: Request, username: str) -> Response:
    person = await _signed_in(request)
    form = await _checked(request)
    change: dict[str, Any] = {}
    if form.get("action") == "roles":
        change["roles"] = _all(form, "roles")
    else:
        change["disabled"] = form.get("action") == "disable"
    async with _api(request, person) as api:
        try:
            await api.call("PATCH", f"/users/{quote(username)}", json=change)
        except ApiProblem as problem:
            return await _people(request, person, api, problem)
    return _done("/admin/users", f"{username} changed.")


@router.get("/admin/channels")
async def channel_accounts(request: Request) -> HTMLResponse:
    person = await _signed_in(request)
    async with _api(request, person) as api:
        return await _channels(request, person, api)


async def _channels(
    request: Request,
    person: Person,
    api: Api,
    error: ApiProblem | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    listing = await api.get("/channels")
    return _render(
        request,
        "admin_channels.html",
        person,
        error.status if error else 200,
        accounts=listing["items"],
        error=error,
        typed=typed or {},
        channels=("x", "facebook", "instagram", "mastodon", "bluesky", "webhook", "outbox"),
        sources=("", "meta", "webhook"),
    )


@router.post("/admin/channels")
async def add_channel(request: Request) -> Response:
    person = await _signed_in(request)
    form = await _form(request)
    typed = {k: v for k, v in form.items() if k != "credentials"}
    async with _api(request, person) as api:
        try:
            body = {
                "name": form.get("name", ""),
                "channel": form.get("channel", ""),
                "source": form.get("source") or None,
                "settings": _pairs(form.get("settings", ""), "settings"),
                "credentials": _pairs(form.get("credentials", ""), "credentials"),
            }
            await api.post("/channels", json=body)
        except ApiProblem as problem:
            return await _channels(request, person, api, problem, typed)
    return _done("/admin/channels", f"Channel account {form.get('name')} added.")


def _pairs(text: str, field: str) -> dict[str, str]:
    """`name = value` lines as a mapping; a line without `=` is a 422 saying which."""
    found = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            detail = f"{field}, line {number}: write name = value"
            raise ApiProblem(422, {"title": "Unprocessable entity", "detail": detail})
        found[name.strip()] = value.strip()
    return found


@router.get("/admin/rules")
async def rules_page(request: Request) -> HTMLResponse:
    person = await _signed_in(request)
    async with _api(request, person) as api:
        return await _rules(request, person, api)


async def _rules(
    request: Request,
    person: Person,
    api: Api,
    source: str | None = None,
    error: ApiProblem | None = None,
) -> HTMLResponse:
    active = await api.get("/policies")
    if source is None:
        source = await api.get("/policies/source")
    return _render(
        request,
        "admin_rules.html",
        person,
        error.status if error else 200,
        active=active,
        source=source,
        error=error,
    )


@router.post("/admin/rules")
async def upload_rules(request: Request) -> Response:
    person = await _signed_in(request)
    form = await _form(request)
    source = form.get("source", "")
    async with _api(request, person) as api:
        try:
            active = await api.put(
                "/policies", content=source.encode(), headers={"Content-Type": "application/yaml"}
            )
        except ApiProblem as problem:
            return await _rules(request, person, api, source, problem)
    return _done("/admin/rules", f"Rule set {active['name']} {active['version']} is in force.")
