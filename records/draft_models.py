"""The tables of a reply's life: the draft, each version of its text, the decisions on it,
per-stage reviews, its publication, and what the local outbox channel "posted". The API's
shapes for them are in `records.draft_shapes`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Text, UniqueConstraint, false, text
from sqlmodel import Field, SQLModel

from lifecycle.words import DraftStatus
from records.fields import PublicationStatus, created
from records.types import BigId, UTCDateTime

# The statuses of an open draft (lifecycle.words.OPEN), as SQL for the partial index.
OPEN_DRAFT = "status NOT IN ('published', 'rejected', 'withdrawn', 'expired')"


class Draft(SQLModel, table=True):
    """A reply to one post; its lifecycle is run by the `draft-<id>` workflow."""

    __tablename__ = "drafts"
    __table_args__ = (
        Index("ix_drafts_review_queue", "status", "stage", "stage_entered_at", "id"),
        Index("ix_drafts_author", "author", "id"),
        Index("ix_drafts_post", "post_id"),
        Index("ix_drafts_status", "status", "id"),
        UniqueConstraint("creation_key", name="uq_drafts_creation_key"),
        # One open draft per post (invariant 8), whoever races to draft it.
        Index(
            "uq_drafts_open_per_post",
            "post_id",
            unique=True,
            sqlite_where=text(OPEN_DRAFT),
            postgresql_where=text(OPEN_DRAFT),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    post_id: int = Field(foreign_key="posts.id", sa_type=BigId)
    author: str = Field(max_length=64)
    status: str = Field(default=DraftStatus.draft.value, max_length=24)
    stage: str | None = Field(default=None, max_length=20)
    stage_entered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sla_due_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="when the open stage's review is due"
    )
    sla_breached: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": false()},
        description="the open stage passed its due time (escalated); it stays in review",
    )
    expires_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="the post's deadline: expired after it"
    )
    version: int = Field(default=1)
    review_round: int = Field(default=0, description="submissions so far; decisions bind to one")
    transitions: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="transitions the workflow recorded; each write compares and sets it",
    )
    route: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    template_id: str | None = Field(default=None, max_length=100)
    template_version: str | None = Field(default=None, max_length=64)
    template_basis: dict[str, Any] | None = Field(
        default=None,
        sa_type=JSON,
        description="the rendered template and its variable spans (policies.TemplateBasis)",
    )
    creation_key: str | None = Field(
        default=None, max_length=64, description="caller + Idempotency-Key of the POST"
    )
    text_key: str | None = Field(
        default=None,
        max_length=64,
        description="seals the draft's texts through Temporal (records.draft_texts): given"
        " with the first, forgotten when they are erased",
    )
    created_at: datetime = created()
    updated_at: datetime = created()


class DraftVersion(SQLModel, table=True):
    __tablename__ = "draft_versions"
    __table_args__ = (
        UniqueConstraint("draft_id", "version", name="uq_draft_versions_draft_version"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    draft_id: int = Field(foreign_key="drafts.id", sa_type=BigId)
    version: int
    body: str = Field(sa_type=Text, nullable=False)
    content_sha256: str = Field(max_length=64)
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON, nullable=False)
    route: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    ruleset_version: str | None = Field(default=None, max_length=64)
    created_by: str = Field(max_length=64)
    created_at: datetime = created()
    erased: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": false()},
        description="its text was erased; its hash stays in the audit log",
    )


class Decision(SQLModel, table=True):
    """One reviewer's decision on one stage of one review round (invariant 3)."""

    __tablename__ = "decisions"
    __table_args__ = (
        UniqueConstraint("draft_id", "review_round", "stage", name="uq_decisions_round_stage"),
        Index("ix_decisions_reviewer", "reviewer", "at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    draft_id: int = Field(foreign_key="drafts.id", sa_type=BigId)
    version: int
    review_round: int
    stage: str = Field(max_length=20)
    decision: str = Field(max_length=20)
    reviewer: str = Field(max_length=64)
    role: str | None = Field(
        default=None, max_length=20, description="the role decided in (a backup role if overdue)"
    )
    content_sha256: str | None = Field(
        default=None, max_length=64, description="the exact text decided on"
    )
    qualification: str | None = Field(
        default=None, max_length=100, description="the reviewer's, as held at sign-off"
    )
    comment: str | None = Field(default=None, sa_type=Text)
    at: datetime = created()


class Publication(SQLModel, table=True):
    """Written before a channel is called, so a reply is posted at most once."""

    __tablename__ = "publications"
    __table_args__ = (
        UniqueConstraint("draft_id", "version", name="uq_publications_draft_version"),
        Index("ix_publications_status", "status", "scheduled_at"),
        Index("ix_publications_external", "channel", "external_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    draft_id: int = Field(foreign_key="drafts.id", sa_type=BigId)
    version: int
    channel: str = Field(max_length=32)
    status: str = Field(default=PublicationStatus.pending.value, max_length=16)
    requested_by: str = Field(max_length=64)
    scheduled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    external_id: str | None = Field(default=None, max_length=200)
    external_url: str | None = Field(default=None, max_length=2048)
    attempts: int = Field(default=0)
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = created()
    updated_at: datetime = created()


class StageReview(SQLModel, table=True):
    """One stage's review of one submission: opened, due, reminded, breached, closed. The
    review SLAs and the time-in-stage KPIs are read from here."""

    __tablename__ = "stage_reviews"
    __table_args__ = (
        UniqueConstraint("draft_id", "review_round", "stage", name="uq_stage_reviews_round"),
        Index("ix_stage_reviews_opened", "opened_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    draft_id: int = Field(foreign_key="drafts.id", sa_type=BigId)
    review_round: int
    stage: str = Field(max_length=20)
    version: int
    opened_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    breached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(
        default=None, max_length=24, description="approve, reject, request_changes, withdrawn…"
    )


class OutboxMessage(SQLModel, table=True):
    """What the local outbox channel "posted"; one row per publication at most."""

    __tablename__ = "outbox_messages"
    __table_args__ = (UniqueConstraint("publication_key", name="uq_outbox_publication_key"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    publication_key: str = Field(max_length=100)
    channel: str = Field(max_length=32)
    in_reply_to: str = Field(max_length=200)
    body: str = Field(sa_type=Text, nullable=False)
    posted_at: datetime = created()
