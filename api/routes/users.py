"""User administration (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from api.deps import Principal, ReadSession, WriteSession, require_roles
from api.schemas import Page
from records import users
from records.models import Role, UserCreate, UserPublic

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


@router.get("", response_model=Page[UserPublic])
def list_users(_admin: Admin, session: ReadSession) -> Page[UserPublic]:
    items = [users.to_public(session, u) for u in users.list_users(session)]
    return Page(items=items, next_cursor=None)
