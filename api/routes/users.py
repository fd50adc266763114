"""User administration (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from api.deps import DatabaseDep, Principal, ReadSession, WriteSession, require_roles
from api.schemas import Page
from lifecycle.words import Role
from records import sessions, users
from records.errors import Conflict, Invalid
from records.fields import USERNAME_PATTERN
from records.user_models import UserChange, UserCreate, UserPublic

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, admin: Admin, session: WriteSession) -> UserPublic:
    user = users.create(
        session,
        username=body.username,
        display_name=body.display_name,
        roles=body.roles,
        password=body.password,
        actor=admin.username,
        actor_role=Role.admin.value,
    )
    return users.to_public(session, user)


@router.patch("/{username}", response_model=UserPublic)
def change_user(
    username: Annotated[str, Path(max_length=64, pattern=USERNAME_PATTERN)],
    body: UserChange,
    admin: Admin,
    session: WriteSession,
) -> UserPublic:
    """Set a person's roles or qualification, or disable (or enable again) their account;
    each change is audited and takes effect on their next request."""
    by = {"actor": admin.username, "actor_role": Role.admin.value}
    if body.disabled and username == admin.username:
        raise Invalid("an admin cannot disable their own account", field="disabled")
    user = users.require(session, username)
    if body.roles is not None and sorted(body.roles) != sorted(
        users.roles_of(session, user.id or 0)
    ):
        if user.issuer is not None:
            raise Conflict(
                "this account's roles come from its identity provider; change them there",
                field="roles",
            )
        user = users.set_roles(session, username, body.roles, **by)
    if body.disabled is not None:
        user = users.set_disabled(session, username, body.disabled, **by)
    if body.qualification is not None:
        user = users.set_qualification(session, username, body.qualification, **by)
    return users.to_public(session, user)


@router.get("", response_model=Page[UserPublic])
def list_users(_admin: Admin, session: ReadSession) -> Page[UserPublic]:
    items = [users.to_public(session, u) for u in users.list_users(session)]
    return Page(items=items, next_cursor=None)


@router.post("/{username}/sessions/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke_sessions(
    username: Annotated[str, Path(max_length=64, pattern=USERNAME_PATTERN)],
    admin: Admin,
    database: DatabaseDep,
) -> None:
    """Sign a person out everywhere: every token they hold now is refused from this moment
    (they can sign in again, unless disabled). Audited."""
    with database.write() as connection:
        sessions.revoke_all(connection, username, actor=admin.username, actor_role=Role.admin)
