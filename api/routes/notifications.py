"""Each person's in-app notifications and their choice of channels per event."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from api.deps import DatabaseDep, Principal, SettingsDep, require_roles
from lifecycle.words import Role
from records import notifications
from records.errors import Invalid
from records.notifications import ChannelName, Event
from records.settings import Settings

router = APIRouter(prefix="/notifications", tags=["notifications"])
Anyone = Annotated[Principal, Depends(require_roles(*Role))]


class NotificationOut(BaseModel):
    id: int
    event: Event
    draft_id: int | None
    post_id: int | None
    message: str
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None = Field(description="pass as `before` for older ones")
    unread: int


class MarkRead(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        default=None, max_length=500, description="these; all unread when absent"
    )


class Marked(BaseModel):
    marked: int


class Preferences(BaseModel):
    email: str | None
    channels: dict[Event, list[ChannelName]]
    available: list[ChannelName] = Field(description="channels configured on this server")


class PreferencesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$",
        description="where e-mail notifications go",
    )
    channels: dict[Event, list[ChannelName]] = Field(default_factory=dict)


@router.get("", response_model=NotificationPage)
async def list_notifications(
    caller: Anyone,
    database: DatabaseDep,
    unread: bool = False,
    before: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{0,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NotificationPage:
    """My notifications, newest first."""
    found = await database.read(
        lambda c: notifications.inbox(
            c,
            caller.username,
            unread_only=unread,
            before_id=int(before) if before else None,
            limit=limit,
        )
    )
    items = [NotificationOut.model_validate(i) for i in found.items]
    more = len(items) == limit
    return NotificationPage(
        items=items, next_cursor=str(items[-1].id) if more else None, unread=found.unread
    )


@router.post("/read", response_model=Marked)
def mark_read(caller: Anyone, database: DatabaseDep, body: MarkRead | None = None) -> Marked:
    """Mark my notifications read (`ids`, or all of them)."""
    with database.write() as connection:
        count = notifications.mark_read(connection, caller.username, body.ids if body else None)
    return Marked(marked=count)


def _preferences(connection: Connection, username: str, settings: Settings) -> Preferences:
    return Preferences.model_validate(
        {
            "email": notifications.email_of(connection, username),
            "channels": notifications.preferences(connection, username),
            "available": ["in_app", *notifications.outbound_channels(settings)],
        }
    )


@router.get("/preferences", response_model=Preferences)
def get_preferences(caller: Anyone, database: DatabaseDep, settings: SettingsDep) -> Preferences:
    """The channels I receive each event on, and my e-mail address."""
    with database.engine.connect() as connection:
        return _preferences(connection, caller.username, settings)


@router.put("/preferences", response_model=Preferences)
def set_preferences(
    body: PreferencesUpdate, caller: Anyone, database: DatabaseDep, settings: SettingsDep
) -> Preferences:
    """Choose channels per event (events not named keep theirs), and set my e-mail."""
    wants_email = any("email" in c for c in body.channels.values())
    with database.write() as connection:
        if body.email is not None:
            notifications.set_email(connection, caller.username, body.email)
        elif wants_email and not notifications.email_of(connection, caller.username):
            raise Invalid("give an e-mail address to receive e-mail", field="email")
        notifications.choose(
            connection, caller.username, {str(k): list(v) for k, v in body.channels.items()}
        )
        return _preferences(connection, caller.username, settings)
