"""Sign-in (OAuth2 password form) and the caller's own profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import CurrentPrincipal, ReadSession, TokensDep, unauthorized
from api.schemas import TokenOut
from records import users
from records.models import UserPublic
from records.passwords import verify_password

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=TokenOut)
def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: ReadSession, tokens: TokensDep
) -> TokenOut:
    user = users.get_by_username(session, form.username)
    ok = verify_password(user.password_hash if user else None, form.password)
    if user is None or not ok or user.disabled:
        raise unauthorized("wrong username or password, or the account is disabled")
    issued = tokens.issue(user.username)
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get("/me", response_model=UserPublic)
def me(principal: CurrentPrincipal, session: ReadSession) -> UserPublic:
    user = users.get_by_username(session, principal.username)
    if user is not None and not principal.external:
        return users.to_public(session, user)
    # A person known only to the identity provider: no local id.
    return UserPublic(
        id=0,
        username=principal.username,
        display_name=principal.username,
        roles=sorted(principal.roles),
        disabled=False,
    )
