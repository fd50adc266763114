"""Request dependencies as `Annotated` aliases: sessions, the caller, role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.standings import Standings
from api.standings import read as read_standing
from api.tokens import TokenError, TokenService, VerifiedToken
from countersign import logs
from lifecycle.words import Role
from records import identities, sessions
from records.db import Database
from records.settings import Settings
from workflows.connection import TemporalGateway

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass(frozen=True)
class Principal:
    username: str
    roles: frozenset[Role]
    external: bool = False  # signed in through the identity provider
    token_id: str | None = None  # the session's token (what signing out revokes)
    issuer: str = ""
    expires_at: int = 0

    def has_any(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_tokens(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


async def get_temporal(request: Request) -> TemporalGateway:
    gateway: TemporalGateway = request.app.state.temporal
    return gateway


DatabaseDep = Annotated[Database, Depends(get_database)]
TokensDep = Annotated[TokenService, Depends(get_tokens)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[TemporalGateway, Depends(get_temporal)]


def read_session(database: DatabaseDep) -> Iterator[Session]:
    with database.read_session() as session:
        yield session


def write_session(database: DatabaseDep) -> Iterator[Session]:
    """The request owns the transaction: committed once when the endpoint returns, before
    the answer is sent (`WriteSession` is scoped to the function): a client told 201 can
    read what it wrote, and a commit that fails is answered as the failure it is."""
    with database.write_session() as session:
        yield session


ReadSession = Annotated[Session, Depends(read_session)]
# FastAPI ends a dependency with `yield` after the response is sent unless it is scoped to
# the function (tests/test_answered_after_commit.py).
WriteSession = Annotated[Session, Depends(write_session, scope="function")]


def unauthorized(detail: str = "a valid bearer token is required") -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


Token = Annotated[str | None, Depends(_bearer)]


async def current_principal(request: Request, token: Token) -> Principal:
    """The signed-in caller, as the record has them now. One dependency, over the bearer
    scheme alone: it reads the token service and the database from the app's state rather
    than through dependencies of its own, which FastAPI would solve again on every request
    (issue 24). Resolved once per request: kept on the request's state (each request has
    its own), where a role check after it finds it."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        state = request.app.state
        principal = await principal_of(token, state.tokens, state.standings)
        request.state.principal = principal
    return principal


async def principal_of(token: str | None, tokens: TokenService, standings: Standings) -> Principal:
    """The person behind a bearer token or a session cookie's token, as the record has
    them now (the pages and the private endpoints ask here too)."""
    if not token:
        raise unauthorized()
    try:
        verified = tokens.verify(token)
    except TokenError as exc:
        raise unauthorized("the bearer token is not valid") from exc

    # Read, or kept since no account changed (api.standings): roles, disabling and
    # signing out apply at once.
    standing = await standings.of(verified)
    database = standings.database
    if standing is None and verified.external:
        standing = await run_in_threadpool(_provision, database, verified)
    elif (
        standing is not None
        and verified.external
        and standing.roles != verified.roles
        and standing.refused is None
    ):  # the provider changed them: the account follows
        standing = await run_in_threadpool(_sync_roles, database, verified, standing)
    if standing is None:
        raise unauthorized("the account behind this token is unknown or disabled")
    if standing.refused is not None:
        raise unauthorized(standing.refused)
    logs.ACTOR.set(standing.username)  # every line logged for this request names them
    return Principal(
        standing.username,
        standing.roles,
        external=verified.external,
        token_id=verified.token_id,
        issuer=verified.issuer,
        expires_at=verified.expires_at,
    )


def _provision(database: Database, verified: VerifiedToken) -> sessions.Standing | None:
    """A provider's person seen for the first time: their account (records.identities)."""
    with database.write() as connection:
        identities.provision(
            connection,
            issuer=verified.issuer,
            subject=verified.subject,
            names=verified.names,
            roles=verified.roles or frozenset(),
        )
        return read_standing(connection, verified)


def _sync_roles(
    database: Database, verified: VerifiedToken, standing: sessions.Standing
) -> sessions.Standing:
    roles = verified.roles or frozenset()
    with database.write() as connection:
        identities.sync_roles(connection, standing.username, roles)
    return replace(standing, roles=roles)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
# The dependencies that resolve the signed-in caller, refusing a request without one: what
# `signed_in_only` looks for on each route (a role check joins as it is made).
_CALLER: set[Callable[..., Any]] = {current_principal}


def require_roles(*roles: Role) -> Callable[[Request, str | None], Awaitable[Principal]]:
    """A route dependency: the caller must hold at least one of `roles`. Flat, as
    `current_principal` is: the caller resolved here, not by a dependency below."""
    allowed = ", ".join(r.value for r in roles)

    async def check(request: Request, token: Token) -> Principal:
        principal = await current_principal(request, token)
        if not principal.has_any(*roles):
            raise HTTPException(403, f"this action needs one of the roles: {allowed}")
        return principal

    _CALLER.add(check)
    return check


def signed_in_only(router: APIRouter) -> APIRouter:
    """`router`, once each of its routes is seen to resolve the signed-in caller through a
    dependency of its own (`current_principal` or a role check), which refuses a request
    without a valid token (401) before the endpoint runs; a route added to it later is
    held to the same as it is made (`_AsksWhoIsCalling`). Checked as the routes are made,
    and not by a dependency on the whole router, which every request would solve once more
    (issue 24): a route that does not ask stops the app from being built."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise RuntimeError(f"{getattr(route, 'path', route)} is not an API route")
        _refuse_unasked(route)
    if getattr(router, "_low_priority_routes", None):  # FastAPI's frontend routes
        raise RuntimeError("a signed-in router serves no frontend routes")
    router.route_class = _AsksWhoIsCalling
    return router


class _AsksWhoIsCalling(APIRoute):
    """A route of a signed-in router (`signed_in_only`), refused as it is made unless it
    asks who is calling."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        _refuse_unasked(self)


def _refuse_unasked(route: APIRoute) -> None:
    if not _names_the_caller(route.dependant):
        raise RuntimeError(
            f"{route.path} does not ask who is calling: give it a role check"
            " (require_roles) or CurrentPrincipal"
        )


def _names_the_caller(dependant: Dependant) -> bool:
    return any(
        below.call in _CALLER or _names_the_caller(below) for below in dependant.dependencies
    )
