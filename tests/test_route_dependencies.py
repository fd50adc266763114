"""Every route's dependencies are flat (issue 24): a route's dependency reads the request
and the app's state itself, with at most the bearer token's scheme under it, rather than a
chain FastAPI solves again on every request (the role check asked for the caller, which
asked for the token, the token service and the database, each a dependency of its own).
The caller is resolved once per request, by one dependency, and reads the account's roles
from the record (on PostgreSQL, kept while no account changes: `api.standings`), so a role
change applies to the next request."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api import API_PREFIX
from api.app import SIGNED_IN, create_app
from api.deps import CurrentPrincipal, Principal, require_roles, signed_in_only
from lifecycle.words import Role
from records import users
from records.db import Database
from records.settings import Environment, load_settings
from tests.helpers import account_reads, statements_sent

# Route -> dependency -> the bearer scheme: the deepest a route's dependencies go.
DEEPEST = 2


def chains(dependant: Dependant, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Each path from a route down to a dependency with none of its own."""
    if not dependant.dependencies:
        return [path]
    found = []
    for below in dependant.dependencies:
        name = getattr(below.call, "__qualname__", type(below.call).__name__)
        found += chains(below, (*path, name))
    return found


def api_routes(routes: list[Any]) -> list[Any]:
    """The routes as requests meet them: FastAPI builds an included router's routes, with
    the router's own dependencies, as `_EffectiveRouteContext`s."""
    found = []
    for route in routes:
        if hasattr(route, "effective_candidates"):
            found += api_routes(route.effective_candidates())
        elif isinstance(route, APIRoute) or getattr(route, "dependant", None) is not None:
            found.append(route)
    return found


def test_no_route_solves_a_chain_of_dependencies(tmp_path: Path) -> None:
    settings = load_settings(
        environment=Environment.test, database_url=f"sqlite:///{tmp_path / 'flat.db'}",
        data_dir=tmp_path, temporal_address="127.0.0.1:1",
    )  # fmt: skip
    app = create_app(settings)
    routes = api_routes(app.routes)
    assert len(routes) > 40  # the API's routes were all seen
    deep = {
        f"{sorted(route.methods)} {route.path}": chain
        for route in routes
        for chain in chains(route.dependant)
        if len(chain) > DEEPEST
    }
    assert not deep, deep
    # The hot routes' caller: one dependency, the role check, over the bearer scheme.
    act = next(r for r in routes if r.path == "/api/v1/drafts/{draft_id}/decisions")
    assert [c for c in chains(act.dependant) if c and c[0].startswith("require_roles")] == [
        ("require_roles.<locals>.check", "OAuth2PasswordBearer")
    ]


def test_the_caller_is_read_once_a_request_and_a_role_change_applies_to_the_next(
    app_client: TestClient,
    database: Database,
    make_user: Callable[..., str],
    login: Callable[..., dict[str, str]],
) -> None:
    """The router's sign-in check and the route's role check share one read of the
    caller's account; the next request reads it again on SQLite, and on PostgreSQL keeps
    what the first read while no account changes (api.standings), so a role taken away
    is refused at once either way."""
    make_user("sam", Role.supervisor)
    headers = login("sam")
    with statements_sent(database) as sent:
        assert app_client.get("/api/v1/users", headers=headers).status_code == 403
        first = account_reads(sent)
        assert app_client.get("/api/v1/posts", headers=headers).status_code == 200
    kept = database.dialect == "postgresql"
    assert first == 1 and account_reads(sent) == (1 if kept else 2), sent
    with database.write_session() as session:
        users.set_roles(session, "sam", [Role.agent], actor="admin", actor_role="admin")
    assert app_client.get("/api/v1/reports/kpis", headers=headers).status_code == 403


def test_a_route_that_does_not_ask_who_is_calling_stops_the_app_being_built() -> None:
    """No dependency on the whole router asks for the caller on every request: each route
    asks itself, and a router with a route that does not is refused as the app is built."""
    careful, careless = APIRouter(), APIRouter()
    for router in (careful, careless):

        @router.get("/asked")
        async def asked(_caller: Annotated[Principal, Depends(require_roles(Role.agent))]) -> None:
            """Asks, by its role check."""

        @router.get("/also-asked")
        async def also_asked(_caller: CurrentPrincipal) -> None:
            """Asks, as any signed-in person."""

    @careless.get("/forgot")
    async def forgot() -> None:
        """Asks no one."""

    assert signed_in_only(careful) is careful
    with pytest.raises(RuntimeError, match="/forgot does not ask who is calling"):
        signed_in_only(careless)


def test_a_route_added_to_a_signed_in_router_later_must_ask_too() -> None:
    """FastAPI serves a router's routes as they are when a request comes, not as they were
    when it was included: one added after the app was built is held to the rule as it is
    made, and one that asks is served and refuses a request without a token."""
    router = signed_in_only(APIRouter(prefix="/later"))
    app = FastAPI()
    app.include_router(router)
    with pytest.raises(RuntimeError, match="/later/forgot does not ask who is calling"):

        @router.get("/forgot")
        async def forgot() -> None:
            """Asks no one."""

    assert not router.routes  # refused, not kept

    @router.get("/asked")
    async def asked(_caller: CurrentPrincipal) -> None:
        """Asks."""

    app.state.tokens = app.state.standings = None  # a request without a token needs neither
    with TestClient(app) as client:
        assert client.get("/later/asked").status_code == 401
        assert client.get("/later/forgot").status_code == 404


def test_every_signed_in_route_refuses_a_request_without_a_valid_token(
    app_client: TestClient,
) -> None:
    """Every route of the signed-in routers answers 401 to no token and to a forged one,
    before its endpoint or its body is looked at."""
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmEifQ.c2lnbmVk"}
    asked = 0
    for router in SIGNED_IN:
        for route in router.routes:
            path = API_PREFIX + re.sub(r"\{[^}]+\}", "1", route.path)
            for method in route.methods:
                for headers in ({}, forged):
                    answer = app_client.request(method, path, headers=headers)
                    assert answer.status_code == 401, (method, path, headers, answer.text)
                    asked += 1
    assert asked > 100
