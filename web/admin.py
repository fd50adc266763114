"""Admin pages: people and their roles, channel accounts, the rule file."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from connectors.inbound import sources
from web.api import Api, ApiProblem
from web.core import (
    Person,
    all_of,
    api_for,
    checked_form,
    done,
    form_of,
    render,
    signed_in,
)

router = APIRouter(include_in_schema=False)


# --- admins: people, channels, rules ------------------------------------------------------


@router.get("/admin/users")
async def people(request: Request) -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        return await _listing(request, person, api, "users")


async def _listing(
    request: Request,
    person: Person,
    api: Api,
    what: str,
    error: ApiProblem | None = None,
    typed: dict[str, str] | None = None,
    **extra: Any,
) -> HTMLResponse:
    """An admin page listing the API's `/{what}` as `items` (`admin_{what}.html`), with the
    form's error and what was typed into it, if a submission was refused."""
    listing = await api.get(f"/{what}")
    return render(
        request,
        f"admin_{what}.html",
        person,
        items=listing["items"],
        error=error,
        typed=typed or {},
        **extra,
    )


@router.post("/admin/users")
async def add_person(request: Request) -> Response:
    person = await signed_in(request)
    form = await checked_form(request)
    typed = {k: v for k, v in form.items() if isinstance(v, str) and k != "password"}
    body = {
        "username": typed.get("username", ""),
        "display_name": typed.get("display_name", ""),
        "password": str(form.get("password", "")),
        "roles": all_of(form, "roles"),
    }
    async with api_for(request, person) as api:
        try:
            await api.post("/users", json=body)
        except ApiProblem as problem:
            return await _listing(request, person, api, "users", problem, typed)
    return done(request, "/admin/users", f"{body['username']} can now sign in.")


@router.post("/admin/users/{username}")
async def change_person(request: Request, username: str) -> Response:
    person = await signed_in(request)
    form = await checked_form(request)
    change: dict[str, Any] = {}
    action = form.get("action")
    if action == "roles":
        change["roles"] = all_of(form, "roles")
    else:
        change["disabled"] = action == "disable"
    async with api_for(request, person) as api:
        try:
            if action == "sign-out":
                await api.post(f"/users/{quote(username)}/sessions/revoke")
            else:
                await api.call("PATCH", f"/users/{quote(username)}", json=change)
        except ApiProblem as problem:
            return await _listing(request, person, api, "users", problem)
    if action == "sign-out":
        return done(request, "/admin/users", f"{username} is signed out everywhere.")
    return done(request, "/admin/users", f"{username} changed.")


@router.get("/admin/channels")
async def channel_accounts(request: Request) -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        return await _channels(request, person, api)


async def _channels(
    request: Request,
    person: Person,
    api: Api,
    error: ApiProblem | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    return await _listing(request, person, api, "channels", error, typed, sources=("", *sources()))


@router.post("/admin/channels")
async def add_channel(request: Request) -> Response:
    person = await signed_in(request)
    form = await form_of(request)
    typed = {k: v for k, v in form.items() if k != "credentials"}
    async with api_for(request, person) as api:
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
    return done(request, "/admin/channels", f"Channel account {form.get('name')} added.")


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
    person = await signed_in(request)
    async with api_for(request, person) as api:
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
    return render(
        request,
        "admin_rules.html",
        person,
        active=active,
        source=source,
        error=error,
    )


@router.post("/admin/rules")
async def upload_rules(request: Request) -> Response:
    person = await signed_in(request)
    form = await form_of(request)
    source = form.get("source", "")
    async with api_for(request, person) as api:
        try:
            active = await api.put(
                "/policies", content=source.encode(), headers={"Content-Type": "application/yaml"}
            )
        except ApiProblem as problem:
            return await _rules(request, person, api, source, problem)
    return done(
        request, "/admin/rules", f"Rule set {active['name']} {active['version']} is in force."
    )
