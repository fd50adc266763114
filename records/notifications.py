"""Notifications: who hears of what, and how.

`notify` runs inside the transaction of the transition that caused the event, so a
notification exists exactly when its event does, once per person (`event_key`), however
often the activity is retried. Each person chooses channels per kind of event (in-app
only until they choose); a channel outside the app (webhook, e-mail) gets a delivery row,
sent by its own activity (`workflows.activities.NotifyActivities`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, get_args

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.engine import Connection

from records.errors import Invalid
from records.tables import DELIVERIES, NOTIFICATIONS, PREFERENCES, USER_ROLES, USERS
from records.types import utcnow

Event = Literal[
    "assigned",
    "review_requested",
    "reminder",
    "escalated",
    "changes_requested",
    "approved",
    "rejected",
    "published",
    "publish_failed",
    "expired",
    "public_risk",
]
EVENTS: tuple[str, ...] = get_args(Event)
ChannelName = Literal["in_app", "webhook", "email"]
IN_APP, WEBHOOK, EMAIL = CHANNELS = get_args(ChannelName)
DEFAULT_CHANNELS = (IN_APP,)


class OutboundSettings(Protocol):
    """What `outbound_channels` reads (`records.settings.Settings`)."""

    @property
    def notify_webhook_url(self) -> str: ...
    @property
    def smtp_host(self) -> str: ...


def outbound_channels(settings: OutboundSettings) -> tuple[str, ...]:
    """The channels outside the app configured here: a webhook URL, an SMTP server."""
    return (WEBHOOK,) * bool(settings.notify_webhook_url) + (EMAIL,) * bool(settings.smtp_host)


def holders(connection: Connection, *roles: str) -> list[str]:
    """Usernames of the enabled users holding any of `roles`, in name order."""
    if not roles:
        return []
    rows = connection.execute(_HOLDERS, {"roles": list(roles)})
    return [r.username for r in rows]


def notify(
    connection: Connection,
    *,
    event: str,
    recipients: Iterable[str],
    message: str,
    event_key: str,
    draft_id: int | None = None,
    post_id: int | None = None,
    outbound: Sequence[str] = (),
) -> list[int]:
    """Record `event` for each recipient; the ids of the deliveries to send outside the app
    (only on the `outbound` channels configured here: a webhook URL, an SMTP server)."""
    assert event in EVENTS, event
    people = sorted(set(recipients))
    if not people:
        return []
    chosen = {
        row.username: row.channels
        for row in connection.execute(_CHOSEN, {"people": people, "event": event})
    }
    now = utcnow()
    rows = [
        {
            "recipient": person,
            "event": event,
            "draft_id": draft_id,
            "post_id": post_id,
            "message": message[:500],
            "event_key": event_key,
            "in_app": IN_APP in chosen.get(person, DEFAULT_CHANNELS),
            "created_at": now,
            "read_at": None,
        }
        for person in people
    ]
    # One statement for all the people, one for their deliveries (ids in the rows' order).
    ids = connection.execute(_NEW_NOTIFICATIONS, rows).scalars().all()
    sends = [
        {"notification_id": notification_id, "channel": channel, "status": "pending", "attempts": 0}
        for person, notification_id in zip(people, ids, strict=True)
        for channel in chosen.get(person, DEFAULT_CHANNELS)
        if channel != IN_APP and channel in outbound
    ]
    if not sends:
        return []
    return list(connection.execute(_NEW_DELIVERIES, sends).scalars().all())


def pending_deliveries(connection: Connection, event_key: str) -> list[int]:
    """Deliveries of the notifications of `event_key` not yet sent (a retried transition
    that an earlier attempt recorded starts them again; sending is idempotent)."""
    rows = connection.execute(
        select(DELIVERIES.c.id)
        .join(NOTIFICATIONS, NOTIFICATIONS.c.id == DELIVERIES.c.notification_id)
        .where(NOTIFICATIONS.c.event_key == event_key, DELIVERIES.c.status == "pending")
        .order_by(DELIVERIES.c.id)
    )
    return [r.id for r in rows]


# --- a person's list ------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    items: list[dict[str, object]]
    unread: int


def inbox(
    connection: Connection,
    username: str,
    *,
    unread_only: bool = False,
    before_id: int | None = None,
    limit: int = 50,
) -> Inbox:
    """A person's in-app notifications, newest first, and how many are unread."""
    query = select(
        NOTIFICATIONS.c.id,
        NOTIFICATIONS.c.event,
        NOTIFICATIONS.c.draft_id,
        NOTIFICATIONS.c.post_id,
        NOTIFICATIONS.c.message,
        NOTIFICATIONS.c.created_at,
        NOTIFICATIONS.c.read_at,
    ).where(NOTIFICATIONS.c.recipient == username, NOTIFICATIONS.c.in_app.is_(True))
    if unread_only:
        query = query.where(NOTIFICATIONS.c.read_at.is_(None))
    if before_id is not None:
        query = query.where(NOTIFICATIONS.c.id < before_id)
    rows = connection.execute(query.order_by(NOTIFICATIONS.c.id.desc()).limit(limit))
    unread = connection.execute(
        select(func.count()).where(
            NOTIFICATIONS.c.recipient == username,
            NOTIFICATIONS.c.in_app.is_(True),
            NOTIFICATIONS.c.read_at.is_(None),
        )
    ).scalar_one()
    return Inbox(items=[dict(r._mapping) for r in rows], unread=int(unread))


def mark_read(
    connection: Connection, username: str, ids: Sequence[int] | None, at: datetime | None = None
) -> int:
    """Mark the person's notifications `ids` (all, when None) read; how many changed."""
    query = update(NOTIFICATIONS).where(
        NOTIFICATIONS.c.recipient == username, NOTIFICATIONS.c.read_at.is_(None)
    )
    if ids is not None:
        query = query.where(NOTIFICATIONS.c.id.in_(list(ids)))
    return int(connection.execute(query.values(read_at=at or utcnow())).rowcount)


# --- choices --------------------------------------------------------------------------


def email_of(connection: Connection, username: str) -> str | None:
    """Where the person's e-mail notifications go (None: nowhere yet)."""
    return connection.execute(select(USERS.c.email).where(USERS.c.username == username)).scalar()


def set_email(connection: Connection, username: str, email: str) -> None:
    connection.execute(update(USERS).where(USERS.c.username == username).values(email=email))


def preferences(connection: Connection, username: str) -> dict[str, list[str]]:
    """The channels the person receives each event on (defaults filled in)."""
    chosen = {
        r.event: list(r.channels)
        for r in connection.execute(
            select(PREFERENCES.c.event, PREFERENCES.c.channels).where(
                PREFERENCES.c.username == username
            )
        )
    }
    return {event: chosen.get(event, list(DEFAULT_CHANNELS)) for event in EVENTS}


def choose(connection: Connection, username: str, choices: dict[str, list[str]]) -> None:
    """Set the channels for the events named in `choices` (others keep theirs)."""
    unknown = sorted(set(choices) - set(EVENTS))
    if unknown:
        raise Invalid(f"unknown events {unknown}; the events are {list(EVENTS)}")
    for event, channels in choices.items():
        bad = sorted(set(channels) - set(CHANNELS))
        if bad:
            raise Invalid(f"unknown channels {bad} for {event}; the channels are {list(CHANNELS)}")
        connection.execute(
            delete(PREFERENCES).where(
                PREFERENCES.c.username == username, PREFERENCES.c.event == event
            )
        )
        ordered = [c for c in CHANNELS if c in channels]
        connection.execute(
            PREFERENCES.insert(), {"username": username, "event": event, "channels": ordered}
        )


# The enabled users and the roles they hold, in name order: what `holders` narrows to some
# roles, and `records.reviews.reviewers` to those who may review a stage.
ENABLED_HOLDERS = (
    select(USERS.c.username)
    .distinct()
    .join(USER_ROLES, USER_ROLES.c.user_id == USERS.c.id)
    .where(USERS.c.disabled.is_(False))
    .order_by(USERS.c.username)
)
_HOLDERS = ENABLED_HOLDERS.where(USER_ROLES.c.role.in_(bindparam("roles", expanding=True)))
_CHOSEN = select(PREFERENCES.c.username, PREFERENCES.c.channels).where(
    PREFERENCES.c.username.in_(bindparam("people", expanding=True)),
    PREFERENCES.c.event == bindparam("event"),
)
_NEW_NOTIFICATIONS = NOTIFICATIONS.insert().returning(
    NOTIFICATIONS.c.id, sort_by_parameter_order=True
)
_NEW_DELIVERIES = DELIVERIES.insert().returning(DELIVERIES.c.id, sort_by_parameter_order=True)
