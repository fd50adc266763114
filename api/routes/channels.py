"""Channel accounts (admins): where posts come from and replies go. Credentials are
write-only: answers name the ones set, never their values."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from api.deps import DatabaseDep, Principal, require_roles
from api.schemas import Page
from connectors import inbound
from records import channels
from records.errors import Invalid
from records.models import ChannelAccountCreate, ChannelAccountPublic, Role

router = APIRouter(prefix="/channels", tags=["channels"])
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


@router.post("", response_model=ChannelAccountPublic, status_code=status.HTTP_201_CREATED)
def create_channel(
    body: ChannelAccountCreate, admin: Admin, database: DatabaseDep
) -> ChannelAccountPublic:
    if body.source is not None and body.source not in inbound.sources():
        raise Invalid(
            f"no inbound source {body.source!r}; the sources are {inbound.sources()}",
            field="source",
        )
    with database.write() as connection:
        return channels.create(connection, body, actor=admin.username)


@router.get("", response_model=Page[ChannelAccountPublic])
def list_channels(_admin: Admin, database: DatabaseDep) -> Page[ChannelAccountPublic]:
    with database.engine.connect() as connection:
        return Page(items=channels.listing(connection), next_cursor=None)
