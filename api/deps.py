"""Request dependencies as `Annotated` aliases: sessions, the caller, role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session
from starlette.exceptions import HTTPException

from api.tokens import TokenError, TokenService
from records import users
from records.db import Database
from records.models import Role
from records.settings import Settings
from workflows.connection import TemporalGateway

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass(frozen=True)
class Principal:
    username: str
    roles: frozenset[Role]
    external: bool = False

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
    """The request owns the transaction: committed once when the endpoint returns."""
    with database.write_session() as session:
        yield session


ReadSession = Annotated[Session, Depends(read_session)]
WriteSession = Annotated[Session, Depends(write_session)]


def unauthorized(detail: str = "a valid bearer token is required") -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(
    token: Annotated[str | None, Depends(_bearer)], tokens: TokensDep, database: DatabaseDep
) -> Principal:
    if not token:
        raise unauthorized()
    try:
        verified = tokens.verify(token)
    except TokenError as exc:
        raise unauthorized("the bearer token is not valid") from exc

    # Roles are read on every request, so a change by an admin takes effect at once.
    found = await database.read(lambda connection: users.account(connection, verified.subject))
    if verified.external:
        # The provider vouches for identity and roles; a local account of the same name
        # that an admin disabled still locks the person out.
        if found is not None and found.disabled:
            raise unauthorized("this account is disabled")
        return Principal(verified.subject, verified.roles or frozenset(), external=True)
    if found is None or found.disabled:
        raise unauthorized("the account behind this token is unknown or disabled")
    return Principal(verified.subject, found.roles)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A route dependency: the caller must hold at least one of `roles`."""
    allowed = ", ".join(r.value for r in roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has_any(*roles):
            raise HTTPException(403, f"this action needs one of the roles: {allowed}")
        return principal

    return check
