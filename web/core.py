"""What every page uses: the signed-in person, the API on their behalf, rendering, the
CSRF-checked form, and where each role starts. The pages themselves are in `web.pages`
(signing in), `web.work` (a reply's making), `web.approvals` (its review and publishing),
`web.oversight` (audit, KPIs), `web.admin`."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from api.deps import principal_of
from connectors.base import web_url
from lifecycle.words import CHOSEN_DISMISS_REASONS, Role
from records.fields import Channel
from records.settings import Settings
from web import session
from web.api import Api, ApiProblem
from web.text import as_time, due, duration, marked, relative

PAGES = Path(__file__).resolve().parent.parent / "templates" / "pages"
STATIC = Path(__file__).resolve().parent / "static"

_jinja = Environment(
    loader=FileSystemLoader(PAGES), autoescape=True, undefined=StrictUndefined, trim_blocks=True
)
_jinja.filters["relative"] = lambda when: relative(when, datetime.now(UTC))
# Only an http(s) address becomes a link, whatever was stored (THREATS: no scripted pages).
_jinja.filters["web_url"] = web_url
_jinja.filters["duration"] = duration
_jinja.filters["due"] = lambda when: due(when, datetime.now(UTC))
_jinja.filters["when"] = lambda when: as_time(when).strftime("%d %b %H:%M UTC") if when else ""
# A reply due before now (`{% if post.respond_by is overdue %}`): the pages' one test of it.
_jinja.tests["overdue"] = lambda when: when is not None and as_time(when) < datetime.now(UTC)
_jinja.globals["marked"] = marked
_jinja.globals["CHANNELS"] = [c.value for c in Channel]
_jinja.globals["ROLES"] = [r.value for r in Role]
_jinja.globals["DISMISS_REASONS"] = [r.value for r in CHOSEN_DISMISS_REASONS]


@dataclass(frozen=True)
class Person:
    username: str
    roles: frozenset[str]
    token: str

    def can(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)


# Where each role starts, in this order of preference, and the navigation it sees.
HOME = (
    (Role.agent, "/inbox"),
    (Role.supervisor, "/inbox"),
    (Role.comms, "/reviews"),
    (Role.legal, "/reviews"),
    (Role.publisher, "/publishing"),
    (Role.auditor, "/audit"),
    (Role.admin, "/admin/users"),
)
NAV = (
    ("/inbox", "Inbox", (Role.agent, Role.supervisor)),
    ("/drafts", "My drafts", (Role.agent,)),
    ("/reviews", "Reviews", (Role.comms, Role.legal, Role.supervisor)),
    ("/publishing", "Publishing", (Role.publisher,)),
    ("/audit", "Audit", (Role.auditor,)),
    ("/board", "Queue board", (Role.supervisor,)),
    ("/routing", "Queues & agents", (Role.supervisor,)),
    ("/kpis", "KPIs", (Role.supervisor, Role.auditor)),
    ("/admin/users", "People", (Role.admin,)),
    ("/admin/channels", "Channels", (Role.admin,)),
    ("/admin/rules", "Rules", (Role.admin,)),
    ("/notifications", "Notifications", tuple(Role)),
)


class LoginNeeded(Exception):
    pass


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def person_of(request: Request) -> Person | None:
    token = request.cookies.get(session.SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = await principal_of(token, request.app.state.tokens, request.app.state.standings)
    except HTTPException:
        return None
    return Person(principal.username, frozenset(r.value for r in principal.roles), token)


async def signed_in(request: Request) -> Person:
    person = await person_of(request)
    if person is None:
        raise LoginNeeded
    return person


def api_for(request: Request, person: Person | None) -> Api:
    client = (request.client.host, request.client.port) if request.client else ("unknown", 0)
    return Api(request.app, person.token if person else None, client)


def render(
    request: Request, name: str, person: Person | None, code: int | None = None, **context: Any
) -> HTMLResponse:
    """The page `name`; its status is `code`, by default that of the refusal it shows as
    `error` (an `ApiProblem`), else 200."""
    if code is None:
        error = context.get("error")
        code = error.status if isinstance(error, ApiProblem) else 200
    settings = settings_of(request)
    # A role that backs up an overdue stage (settings) reviews too.
    backups = tuple(settings.sla_backup_roles.values())
    nav = [
        (href, label)
        for href, label, roles in NAV
        if person and person.can(*roles, *(backups if href == "/reviews" else ()))
    ]
    html = _jinja.get_template(name).render(
        me=person,
        nav=nav,
        path=request.url.path,
        csrf=session.csrf_token(request, settings),
        notice=_notice(request, settings),
        **context,
    )
    response = HTMLResponse(html, status_code=code)
    session.remember_seed(request, response, settings)
    return response


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", None, status, title=title, detail=detail)


def done(request: Request, url: str, notice: str) -> RedirectResponse:
    """Go to `url` and say `notice` there. The notice travels signed: a link that carries
    any other text (`/login?notice=Call us on …`) shows nothing."""
    joiner = "&" if "?" in url else "?"
    signed = {"notice": notice, "ns": _notice_mac(notice, settings_of(request))}
    return RedirectResponse(f"{url}{joiner}{urlencode(signed)}", status_code=303)


def _notice(request: Request, settings: Settings) -> str:
    notice = request.query_params.get("notice", "")
    mac = request.query_params.get("ns", "")
    return notice if notice and hmac.compare_digest(_notice_mac(notice, settings), mac) else ""


def _notice_mac(notice: str, settings: Settings) -> str:
    key = hmac.new(settings.csrf_secret.encode(), b"countersign page notices", hashlib.sha256)
    return hmac.new(key.digest(), notice.encode(), hashlib.sha256).hexdigest()[:32]


async def form_of(request: Request) -> dict[str, str]:
    """The posted form's text fields, once its CSRF token is checked."""
    form = await checked_form(request)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def checked_form(request: Request) -> FormData:
    """The posted form (with its repeated fields), once its CSRF token is checked."""
    await session.check_csrf(request, settings_of(request))
    return await request.form()


def all_of(form: FormData, name: str) -> list[str]:
    """Every value of a repeated field (checkboxes)."""
    return [value for value in form.getlist(name) if isinstance(value, str)]


TIMES = ("since", "until")


def filters_of(request: Request, names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """A page's filters as typed (to show them again) and as the API takes them: only those
    given, and times (from `datetime-local` inputs) in UTC."""
    typed = {name: request.query_params.get(name, "") for name in names}
    asked = {k: as_utc(v) if k in TIMES else v for k, v in typed.items() if v}
    return typed, asked


def as_utc(local: str) -> str:
    """A `datetime-local` value (pages show times in UTC), as UTC; else as typed, for the
    API to refuse with its reason."""
    try:
        when = datetime.fromisoformat(local)
    except ValueError:
        return local
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
