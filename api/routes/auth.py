"""Sign-in (OAuth2 password form) and the caller's own profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import CurrentPrincipal, DatabaseDep, ReadSession, TokensDep, unauthorized
from api.schemas import TokenOut
from api.signin import SignInThrottle
from records import sessions, users
from records.errors import Invalid
from records.passwords import verify_password
from records.user_models import UserPublic

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/token",
    response_model=TokenOut,
    responses={
        429: {"description": "too many failed sign-ins; see Retry-After"},
        503: {"description": "too many passwords being checked at once; see Retry-After"},
    },
)
def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: ReadSession,
    tokens: TokensDep,
) -> TokenOut:
    """A bearer token for a username and password. Failed attempts are throttled per
    username and per client address (`api.signin`): 429 with Retry-After."""
    throttle: SignInThrottle = request.app.state.sign_in
    address = request.client.host if request.client else "unknown"
    throttle.attempt(form.username, address)  # counted before the password is checked
    user = users.get_by_username(session, form.username)
    ok = verify_password(user.password_hash if user else None, form.password)
    if user is None or not ok or user.disabled:
        raise unauthorized("wrong username or password, or the account is disabled")
    throttle.succeeded(form.username, address)
    issued = tokens.issue(user.username)
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(principal: CurrentPrincipal, database: DatabaseDep) -> None:
    """End this session: the token that made the request is refused from now on."""
    if principal.token_id is None:
        raise Invalid(
            "this identity provider's token carries no id to revoke; sign out at the provider"
        )
    with database.write() as connection:
        token = sessions.token_key(principal.issuer, principal.token_id)
        sessions.revoke_token(connection, principal.username, token, principal.expires_at)


@router.get("/me", response_model=UserPublic)
def me(principal: CurrentPrincipal, session: ReadSession) -> UserPublic:
    """The caller's account (an identity provider's person has one too, provisioned on
    their first request)."""
    return users.to_public(session, users.require(session, principal.username))
