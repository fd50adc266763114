"""Notifications: one per event and person, its deliveries, and each person's choices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlalchemy import text as sql
from sqlmodel import Field, SQLModel

from records.fields import created
from records.types import BigId, UTCDateTime


class Notification(SQLModel, table=True):
    """One event for one person. Written in the transaction of the transition that caused
    it, once per event and person (`event_key`), whatever retries."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_key", "recipient", name="uq_notifications_event_recipient"),
        Index("ix_notifications_inbox", "recipient", "id"),
        # The unread ones alone: the inbox's unread count reads these, not every one.
        Index(
            "ix_notifications_unread",
            "recipient",
            "id",
            sqlite_where=sql("in_app IS 1 AND read_at IS NULL"),
            postgresql_where=sql("in_app IS true AND read_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    recipient: str = Field(max_length=64)
    event: str = Field(max_length=32)
    draft_id: int | None = Field(default=None, sa_type=BigId)
    post_id: int | None = Field(default=None, sa_type=BigId)
    message: str = Field(max_length=500)
    event_key: str = Field(max_length=200)
    in_app: bool = Field(default=True, description="shown in the person's in-app list")
    created_at: datetime = created()
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NotificationDelivery(SQLModel, table=True):
    """A notification sent outside the app (webhook, e-mail): sent once, retried with
    backoff by its own activity, never holding up the draft's workflow."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "channel", name="uq_notification_deliveries"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    notification_id: int = Field(foreign_key="notifications.id", sa_type=BigId)
    channel: str = Field(max_length=16)
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NotificationPreference(SQLModel, table=True):
    """The channels one person chose for one kind of event (in-app only when absent)."""

    __tablename__ = "notification_preferences"

    username: str = Field(primary_key=True, max_length=64)
    event: str = Field(primary_key=True, max_length=32)
    channels: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
