"""Inbound posts: what a channel or a client gives (`PostCreate`, with the author's profile),
what the API answers, and the table."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, WithJsonSchema, field_validator, model_validator
from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, false
from sqlalchemy import text as sql
from sqlmodel import Field, SQLModel

from lifecycle.words import CHOSEN_DISMISS_REASONS, DismissReason, PostStatus
from records.fields import (
    FORBID_EXTRA,
    FUTURE_SKEW,
    NO_NUL,
    ONE_LINE,
    URL_PATTERN,
    USERNAME_PATTERN,
    Channel,
    Origin,
    Priority,
    created,
)
from records.types import BigId, UTCDateTime, utcnow


class PostBase(SQLModel):
    channel: Channel
    external_id: str = Field(min_length=1, max_length=200, schema_extra={"pattern": ONE_LINE})
    author: str = Field(min_length=1, max_length=200, schema_extra={"pattern": ONE_LINE})
    text: str = Field(min_length=1, max_length=20_000, schema_extra={"pattern": NO_NUL})
    url: str = Field(max_length=2048, schema_extra={"pattern": URL_PATTERN})
    priority: Priority = Priority.normal
    origin: Origin = Origin.webhook
    in_reply_to: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        schema_extra={"pattern": ONE_LINE},
        description="the platform id of the post it answers",
    )
    root_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        schema_extra={"pattern": ONE_LINE},
        description="the platform id of its thread's first post, where the platform says",
    )


class AuthorProfile(SQLModel):
    """What a channel says about a post's author (all optional; the id defaults to the
    author's handle)."""

    model_config = FORBID_EXTRA
    id: str | None = Field(
        default=None, min_length=1, max_length=200, schema_extra={"pattern": ONE_LINE}
    )
    display_name: str | None = Field(
        default=None, max_length=200, schema_extra={"pattern": ONE_LINE}
    )
    followers: int | None = Field(default=None, ge=0, le=10**12)
    verified: bool | None = None
    profile_url: str | None = Field(
        default=None, max_length=2048, schema_extra={"pattern": URL_PATTERN}
    )
    language: str | None = Field(
        default=None, min_length=2, max_length=16, schema_extra={"pattern": r"^[A-Za-z-]+$"}
    )
    joined_at: AwareDatetime | None = Field(
        default=None, description="when the account was made (a new one posting links: spam)"
    )


class PostCreate(PostBase):
    model_config = FORBID_EXTRA
    received_at: AwareDatetime
    author_profile: AuthorProfile | None = None

    @model_validator(mode="after")
    def _not_from_the_future(self) -> PostCreate:
        """A post from the future would sort above everything and freeze its author's
        profile (a newer post updates it); a few minutes of clock skew are allowed."""
        if self.received_at > utcnow() + FUTURE_SKEW:
            raise ValueError("received_at is in the future")
        return self


class PostPublic(PostBase):
    id: int
    received_at: datetime
    status: PostStatus
    assignee: str | None
    replies_allowed: int = Field(
        default=1, description="public replies it may get (more by a supervisor's allowance)"
    )
    author_id: str | None
    customer_id: int | None
    conversation_id: int | None
    topic: str | None = None
    language: str | None = Field(default=None, description="ISO 639-1; none: undetermined")
    sentiment: float | None = Field(default=None, description="VADER's compound score")
    reach: str | None = None
    public_risk: bool = False
    spam: str | None = Field(default=None, description="why triage took it for spam")
    triage: list[str] | None = Field(
        default=None, description="what triage found, and why the post has its priority"
    )
    dismissed_reason: DismissReason | None = None
    dismissed_note: str | None = None
    dismissed_by: str | None = Field(default=None, description="a person, or triage or erasure")
    dismissed_at: datetime | None = None
    queue_id: int | None = None
    respond_by: datetime | None = Field(
        default=None, description="when the first reply is due (its first-response target)"
    )
    assigned_at: datetime | None = Field(default=None, description="when it was last assigned")
    first_replied_at: datetime | None = Field(
        default=None, description="when its first reply was confirmed published"
    )


class PostDismiss(SQLModel):
    """Why a post needs no reply."""

    model_config = FORBID_EXTRA
    # Documented as the reasons a person may give: an erasure's own is refused (below).
    reason: Annotated[
        DismissReason,
        WithJsonSchema({"type": "string", "enum": list(CHOSEN_DISMISS_REASONS)}),
    ] = Field(description="why the post needs no reply")
    note: str | None = Field(
        default=None, min_length=1, max_length=500, schema_extra={"pattern": NO_NUL}
    )

    @field_validator("reason")
    @classmethod
    def _chosen(cls, reason: DismissReason) -> DismissReason:
        if reason not in CHOSEN_DISMISS_REASONS:
            raise ValueError(
                f"{reason} is given by a customer's erasure, not chosen; choose one of "
                + ", ".join(CHOSEN_DISMISS_REASONS)
            )
        return reason


class PostAssign(SQLModel):
    model_config = FORBID_EXTRA
    assignee: str | None = Field(
        default=None,
        max_length=64,
        schema_extra={"pattern": USERNAME_PATTERN},
        description="username; omitted means the caller",
    )


# Every queue filter has an index that ends in the keyset order (received_at, id), so a
# page costs the same at the first cursor and the ten-thousandth.
class Post(PostBase, table=True):
    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_posts_channel_external_id"),
        Index("ix_posts_queue", "received_at", "id"),
        Index("ix_posts_status_queue", "status", "received_at", "id"),
        Index("ix_posts_channel_queue", "channel", "received_at", "id"),
        Index("ix_posts_assignee_queue", "assignee", "received_at", "id"),
        Index("ix_posts_priority_queue", "priority", "received_at", "id"),
        Index("ix_posts_conversation", "conversation_id", "received_at", "id"),
        Index("ix_posts_customer", "customer_id", "received_at", "id"),
        Index("ix_posts_identity", "identity_id"),  # adopting, unlinking an identity
        Index("ix_posts_topic_queue", "topic", "received_at", "id"),
        Index("ix_posts_routing_queue", "queue_id", "received_at", "id"),
        # Most urgent first, by when the first reply is due (`respond_by`): the whole inbox
        # and its status filter (the pages' lists) have an index; other filters sort their
        # matches.
        Index("ix_posts_due_queue", "respond_by", "id"),
        Index("ix_posts_status_due", "status", "respond_by", "id"),
        # The few posts flagged a public risk, for the KPI report (`service_kpis`): written
        # as its query's condition is on each database, so the planner uses it.
        Index(
            "ix_posts_public_risk",
            "received_at",
            sqlite_where=sql("public_risk IS 1"),
            postgresql_where=sql("public_risk IS true"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    # Stored as plain strings: a new channel or priority needs no schema change.
    channel: Channel = Field(sa_type=String(32), nullable=False)
    priority: Priority = Field(default=Priority.normal, sa_type=String(16), nullable=False)
    text: str = Field(sa_type=Text, nullable=False)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: str = Field(default=PostStatus.new.value, max_length=16)
    assignee: str | None = Field(default=None, max_length=64)
    account_id: int | None = Field(
        default=None,
        foreign_key="channel_accounts.id",
        sa_type=BigId,
        description="the channel account it came through; its replies go out through it",
    )
    replies_allowed: int = Field(
        default=1,
        sa_column_kwargs={"server_default": "1"},
        description="public replies it may get: one, more only by a supervisor's allowance",
    )
    erased: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": false()},
        description="its text and author were erased (retention, the customer's request)",
    )
    origin: Origin = Field(
        default=Origin.webhook, sa_type=String(16), sa_column_kwargs={"server_default": "webhook"}
    )
    in_reply_to: str | None = Field(default=None, max_length=200)
    root_id: str | None = Field(default=None, max_length=200)
    # What triage found (`policies.triage`): the priority above is its, unless the source
    # claimed a more urgent one.
    topic: str | None = Field(default=None, max_length=32)
    language: str | None = Field(default=None, max_length=8)
    sentiment: float | None = Field(default=None)
    reach: str | None = Field(default=None, max_length=8)
    public_risk: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    spam: str | None = Field(default=None, max_length=24)
    triage: list[str] | None = Field(default=None, sa_type=JSON)
    # Why it needs no reply, who said so and when (`records.dismissals`); cleared when a
    # supervisor restores it (the audit record keeps both).
    dismissed_reason: str | None = Field(default=None, max_length=32)
    dismissed_note: str | None = Field(default=None, sa_type=Text)
    dismissed_by: str | None = Field(default=None, max_length=64)
    dismissed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The queue it waits in (`records.routing`): the first whose rules it meets.
    queue_id: int | None = Field(default=None, foreign_key="queues.id", sa_type=BigId)
    # When its first reply is due: arrival plus its queue's (or the rule set's) target for
    # its priority (`records.routing.respond_by`); and when it was last assigned, where its
    # handle time starts.
    respond_by: datetime = Field(sa_type=UTCDateTime, nullable=False)
    assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When its first reply was confirmed published (`records.transitions.answer_post`).
    first_replied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    author_id: str | None = Field(default=None, max_length=200)
    identity_id: int | None = Field(
        default=None, foreign_key="customer_identities.id", sa_type=BigId
    )
    customer_id: int | None = Field(default=None, foreign_key="customers.id", sa_type=BigId)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", sa_type=BigId)
    created_at: datetime = created()
    updated_at: datetime = created()
