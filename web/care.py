"""The contact center's pages (issue 23): the supervisor's live queue board (it refreshes
itself), the routing set-up (teams, queues with their rules and first-response targets,
agents' skills, capacity and presence), and an agent's own presence.

Every change goes through the API, which checks and audits it; a refusal is shown on the
page with what was typed kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from lifecycle.routing import URGENCY, Strategy
from lifecycle.words import Presence
from records.fields import Origin
from records.routing_models import QueueCreate
from web.api import Api, ApiProblem
from web.core import Person, all_of, api_for, checked_form, done, form_of, render, signed_in

router = APIRouter(include_in_schema=False)


RULE_LISTS = ("languages", "topics")  # typed as comma-separated codes
BOARD_REFRESH_SECONDS = 10
MOST_URGENT = 10  # posts shown under the board


@router.get("/board")
async def board(request: Request) -> HTMLResponse:
    """Per queue, now; and the waiting posts most urgent first (a public-risk post that
    just came in is at the top)."""
    person = await signed_in(request)
    async with api_for(request, person) as api:
        rows = await api.get("/queues/board")
        urgent = await api.get("/posts", status="new", order="due", limit=MOST_URGENT)
    return render(
        request, "board.html", person, rows=rows, posts=urgent["items"],
        refresh=BOARD_REFRESH_SECONDS, now_text=datetime.now(UTC).strftime("%H:%M:%S UTC"),
    )  # fmt: skip


@router.get("/routing")
async def routing_page(request: Request) -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        return await _routing(request, person, api)


async def _routing(
    request: Request,
    person: Person,
    api: Api,
    error: ApiProblem | None = None,
    typed: dict[str, str] | None = None,
    queue_typed: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The page; after a refusal, its error, what was typed, and (`queue_typed`) the queue
    form refused, shown open with what was typed in it."""
    teams = await api.get("/teams")
    return render(
        request, "routing.html", person,
        teams=teams, team_names={t["id"]: t["name"] for t in teams},
        queues=await api.get("/queues"), agents=await api.get("/agents"),
        error=error, typed=typed or {}, queue_typed=queue_typed, new_queue=_NEW_QUEUE,
        PRIORITIES=list(URGENCY),
        STRATEGIES=[s.value for s in Strategy], PRESENCES=[p.value for p in Presence],
        ORIGINS=[o.value for o in Origin],
    )  # fmt: skip


@router.post("/routing/teams")
async def add_team(request: Request) -> Response:
    person = await signed_in(request)
    form = await form_of(request)
    async with api_for(request, person) as api:
        try:
            await api.post("/teams", json={"name": form.get("name", "")})
        except ApiProblem as problem:
            return await _routing(request, person, api, problem, form)
    return done(request, "/routing", f"Team {form.get('name')} added.")


@router.post("/routing/queues")
async def save_queue(request: Request) -> Response:
    """A new queue, or (with `queue_id`) a change to one."""
    person = await signed_in(request)
    form = await checked_form(request)
    typed = {k: v for k, v in form.items() if isinstance(v, str)}
    body = _queue_body(form, typed)
    queue_id = typed.get("queue_id", "")
    async with api_for(request, person) as api:
        try:
            if queue_id:
                await api.put(f"/queues/{queue_id}", json=body)
            else:
                await api.post("/queues", json=body)
        except ApiProblem as problem:
            shown = {**_NEW_QUEUE, **body, "id": _number(queue_id) if queue_id else None}
            return await _routing(request, person, api, problem, typed, shown)
    return done(request, "/routing", f"Queue {body['name']} saved.")


# The add-a-queue form's values before anything is typed: the API's own defaults.
_NEW_QUEUE: dict[str, Any] = {
    **QueueCreate.model_construct(name="").model_dump(mode="json"),
    "id": None,
}


def _queue_body(form: FormData, typed: dict[str, str]) -> dict[str, Any]:
    """The queue as the API takes it; what cannot be read is passed as typed, for the API
    to refuse with its reason."""
    body: dict[str, Any] = {
        "name": typed.get("name", ""),
        "strategy": typed.get("strategy", Strategy.longest_idle.value),
        "channels": all_of(form, "channels"),
        "priorities": all_of(form, "priorities"),
        "origins": all_of(form, "origins"),
        **{name: _codes(typed.get(name, "")) for name in RULE_LISTS},
        "response_minutes": {
            p: _number(typed[f"target_{p}"]) for p in URGENCY if typed.get(f"target_{p}")
        },
    }
    for name in ("team_id", "position", "overflow_to", "overflow_after_minutes"):
        if typed.get(name):
            body[name] = _number(typed[name])
    return body


def _codes(text: str) -> list[str]:
    return [code.strip().lower() for code in text.split(",") if code.strip()]


def _number(text: str) -> int | str:
    """A whole number typed in a form; anything else as typed, for the API to refuse."""
    return int(text) if text.strip().isascii() and text.strip().isdecimal() else text


@router.post("/routing/agents/{username}")
async def save_agent(request: Request, username: str) -> Response:
    """An agent's team, skills and capacity (`action=skills`), or presence."""
    person = await signed_in(request)
    form = await checked_form(request)
    typed = {k: v for k, v in form.items() if isinstance(v, str)}
    async with api_for(request, person) as api:
        try:
            if typed.get("action") == "presence":
                body: dict[str, Any] = {"presence": typed.get("presence", "")}
                await api.put(f"/agents/{username}/presence", json=body)
            else:
                body = {
                    "capacity": _number(typed.get("capacity", "3")),
                    "channels": all_of(form, "channels"),
                    **{name: _codes(typed.get(name, "")) for name in RULE_LISTS},
                    **({"team_id": _number(typed["team_id"])} if typed.get("team_id") else {}),
                }
                await api.put(f"/agents/{username}/skills", json=body)
        except ApiProblem as problem:
            return await _routing(request, person, api, problem, typed)
    return done(request, "/routing", f"{username} saved.")


@router.post("/presence")
async def my_presence(request: Request) -> Response:
    """An agent's own: available (the router offers them posts), away or offline (their
    posts not started go back to the queue)."""
    person = await signed_in(request)
    form = await form_of(request)
    state = form.get("presence", "")
    async with api_for(request, person) as api:
        try:
            given = await api.put(f"/agents/{person.username}/presence", json={"presence": state})
        except ApiProblem as problem:
            return done(request, "/inbox", f"Presence not changed: {problem.detail}")
    return done(request, "/inbox", f"You are {given['presence']}.")
