"""The audit record's tables (append-only: see `records.audit`): events, the Merkle tree's
nodes, signed checkpoints, and legal holds with their API shapes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, model_validator
from sqlalchemy import Index, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from records.fields import FORBID_EXTRA, NO_NUL, created
from records.types import BigId, UTCDateTime


class AuditEvent(SQLModel, table=True):
    """Append-only, hash-chained (see `records.audit`)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("event_key", name="uq_audit_events_event_key"),
        Index("ix_audit_events_draft", "draft_id", "seq"),
        Index("ix_audit_events_actor", "actor", "seq"),
        Index("ix_audit_events_action", "action", "seq"),
        Index("ix_audit_events_at", "at", "seq"),
    )

    seq: int = Field(primary_key=True, sa_type=BigId, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    actor: str = Field(max_length=64)
    role: str = Field(max_length=20)
    action: str = Field(max_length=64)
    draft_id: int | None = Field(default=None, sa_type=BigId)
    version: int | None = None
    content_sha256: str | None = Field(default=None, max_length=64)
    payload: str = Field(sa_type=Text, nullable=False, description="canonical JSON")
    payload_sha256: str | None = Field(
        default=None,
        max_length=64,
        description="SHA-256 of `payload`: the tree commits to it, so erasing content keeps it",
    )
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    event_key: str | None = Field(
        default=None, max_length=200, description="makes a retried write a no-op"
    )
    erased: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": false()},
        description="the payload was erased; its digest stays, and so does the proof",
    )


class HoldScope(StrEnum):
    draft = "draft"
    post = "post"
    customer = "customer"  # a post author, on the channel where they wrote
    range = "range"  # everything created in [since, until)


class LegalHold(SQLModel, table=True):
    """While a hold is in place (not lifted), nothing it covers is erased."""

    __tablename__ = "legal_holds"
    __table_args__ = (Index("ix_legal_holds_active", "lifted_at", "scope"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    scope: str = Field(max_length=16)
    draft_id: int | None = Field(default=None, sa_type=BigId)
    post_id: int | None = Field(default=None, sa_type=BigId)
    customer: str | None = Field(default=None, max_length=200)
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(sa_type=Text, nullable=False)
    placed_by: str = Field(max_length=64)
    placed_at: datetime = created()
    lifted_by: str | None = Field(default=None, max_length=64)
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lift_reason: str | None = Field(default=None, sa_type=Text)


class HoldCreate(SQLModel):
    """A hold: its scope and exactly the field that scope names, and why."""

    model_config = FORBID_EXTRA
    scope: HoldScope
    draft_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    post_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    customer: str | None = Field(default=None, min_length=1, max_length=200)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    reason: str = Field(min_length=3, max_length=2000, schema_extra={"pattern": NO_NUL})

    @model_validator(mode="after")
    def _one_target(self) -> HoldCreate:
        named = {
            HoldScope.draft: ("draft_id",),
            HoldScope.post: ("post_id",),
            HoldScope.customer: ("customer",),
            HoldScope.range: ("since", "until"),
        }[self.scope]
        given = {
            k
            for k in ("draft_id", "post_id", "customer", "since", "until")
            if getattr(self, k) is not None
        }
        if given != set(named):
            raise ValueError(f"a {self.scope} hold names {' and '.join(named)}, and nothing else")
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class HoldLift(SQLModel):
    model_config = FORBID_EXTRA
    reason: str = Field(min_length=3, max_length=2000, schema_extra={"pattern": NO_NUL})


class HoldPublic(SQLModel):
    id: int
    scope: str
    draft_id: int | None
    post_id: int | None
    customer: str | None
    since: datetime | None
    until: datetime | None
    reason: str
    placed_by: str
    placed_at: datetime
    lifted_by: str | None
    lifted_at: datetime | None
    lift_reason: str | None


class AuditCheckpoint(SQLModel, table=True):
    """A signed checkpoint of the audit tree (`records.checkpoints`); also written outside
    the database. Append-only, like the events."""

    __tablename__ = "audit_checkpoints"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    tree_size: int = Field(sa_type=BigId)
    root_hash: str = Field(max_length=64)
    signed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    note: str = Field(sa_type=Text, nullable=False, description="the signed note, verbatim")


class AuditNode(SQLModel, table=True):
    """A perfect subtree of the Merkle tree over the audit events (`records.merkle`): level
    0 holds each event's leaf hash, and node (level, index) covers leaves [index * 2^level,
    (index + 1) * 2^level). Append-only, like the events."""

    __tablename__ = "audit_nodes"

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_type=BigId, sa_column_kwargs={"autoincrement": False})
    hash: str = Field(max_length=64)
