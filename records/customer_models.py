"""Customers, their identities on each channel, notes about them, and conversations: the
tables and API shapes of issue 22 (the functions are in `records.customers` and
`records.conversations`).

A customer is one person across channels. Each channel identity (an author id on a
channel) belongs to exactly one customer; a post is written by an identity and belongs to
one conversation (a platform thread, known by its root). Linking two customers moves one's
identities, and their posts, to the other; unlinking gives an identity a customer of its
own again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from records.fields import FORBID_EXTRA, created
from records.types import BigCount, BigId, UTCDateTime


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_merged_into", "merged_into"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    display_name: str = Field(max_length=200)
    merged_into: int | None = Field(
        default=None,
        foreign_key="customers.id",
        sa_type=BigId,
        description="linked into that customer: its identities and posts are there now",
    )
    crm_id: str | None = Field(default=None, max_length=200)
    crm_tier: str | None = Field(default=None, max_length=64)
    crm_value: str | None = Field(default=None, max_length=64)
    crm_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created()
    updated_at: datetime = created()


class CustomerIdentity(SQLModel, table=True):
    """Who wrote a post, as its channel says: kept up to date from each post's author."""

    __tablename__ = "customer_identities"
    __table_args__ = (
        UniqueConstraint("channel", "author_id", name="uq_identities_channel_author"),
        Index("ix_identities_customer", "customer_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    customer_id: int = Field(foreign_key="customers.id", sa_type=BigId)
    channel: str = Field(sa_type=String(32))
    author_id: str = Field(max_length=200)
    handle: str = Field(max_length=200)
    display_name: str | None = Field(default=None, max_length=200)
    followers: int | None = Field(default=None, sa_type=BigCount)
    verified: bool | None = None
    profile_url: str | None = Field(default=None, max_length=2048)
    language: str | None = Field(default=None, max_length=16)
    seen_at: datetime = Field(sa_type=UTCDateTime, description="the newest post it came from")
    created_at: datetime = created()
    updated_at: datetime = created()


class CustomerNote(SQLModel, table=True):
    __tablename__ = "customer_notes"
    __table_args__ = (Index("ix_customer_notes_customer", "customer_id", "id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    customer_id: int = Field(foreign_key="customers.id", sa_type=BigId)
    author: str = Field(max_length=64)
    text: str = Field(sa_type=Text)
    created_at: datetime = created()


class Conversation(SQLModel, table=True):
    """One customer's side of a platform thread: known by its channel, the external id of
    the thread's first post, and the identity whose posts it holds (everyone answering the
    brand's own post is in the same platform thread, and none of them in another's
    conversation)."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint(
            "channel", "root_id", "identity_id", name="uq_conversations_channel_root_identity"
        ),
        Index("ix_conversations_customer", "customer_id", "last_post_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    channel: str = Field(sa_type=String(32))
    root_id: str = Field(max_length=200)
    identity_id: int = Field(foreign_key="customer_identities.id", sa_type=BigId)
    customer_id: int | None = Field(default=None, foreign_key="customers.id", sa_type=BigId)
    started_at: datetime = Field(sa_type=UTCDateTime)
    last_post_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = created()


# --- API shapes -------------------------------------------------------------------------


class IdentityPublic(SQLModel):
    id: int
    channel: str
    author_id: str
    handle: str
    display_name: str | None
    followers: int | None
    verified: bool | None
    profile_url: str | None
    language: str | None
    seen_at: datetime


class NoteCreate(SQLModel):
    model_config = FORBID_EXTRA
    text: str = Field(min_length=1, max_length=2000, schema_extra={"pattern": r"\S"})


class NotePublic(SQLModel):
    id: int
    author: str
    text: str
    created_at: datetime


class CustomerPublic(SQLModel):
    id: int
    display_name: str
    identities: list[IdentityPublic]
    notes: list[NotePublic]
    crm_id: str | None
    crm_tier: str | None
    crm_value: str | None
    crm_checked_at: datetime | None = Field(description="when the CRM last answered")


class CustomerLink(SQLModel):
    """Link another customer into this one (the same person on another channel)."""

    model_config = FORBID_EXTRA
    customer_id: int = Field(gt=0, description="the customer to merge into this one")
