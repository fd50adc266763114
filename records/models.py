"""Tables and the API shapes derived from them, one SQLModel family per entity.

`XBase` holds the fields a client may set, `XCreate` is the request body (unknown fields
refused), `XPublic` the response, and `X(XBase, table=True)` the table. The schema itself
is created only by the Alembic migrations in `alembic/versions/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, model_validator
from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, false, text
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig

# The lifecycle's words are defined once, in lifecycle.words; re-exported here beside the
# tables that store them.
from lifecycle.words import Action
from lifecycle.words import DecisionKind as DecisionKind
from lifecycle.words import DraftStatus as DraftStatus
from lifecycle.words import PostStatus as PostStatus
from lifecycle.words import ReviewStage as ReviewStage
from lifecycle.words import Role as Role
from records.types import BigId, UTCDateTime, utcnow

FORBID_EXTRA = SQLModelConfig(extra="forbid")
FUTURE_SKEW = timedelta(minutes=5)  # how far ahead a platform's clock may be


class Channel(StrEnum):
    x = "x"
    facebook = "facebook"
    instagram = "instagram"
    mastodon = "mastodon"
    bluesky = "bluesky"
    webhook = "webhook"
    outbox = "outbox"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class Origin(StrEnum):
    """How a post came to us: talking *to* us (a mention, a reply in a thread), *about* us
    (found by listening for the brand's terms), or delivered by a webhook."""

    mention = "mention"
    reply = "reply"
    listening = "listening"
    webhook = "webhook"


class PublicationStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    confirmed = "confirmed"
    failed = "failed"


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


# --- users -----------------------------------------------------------------------------

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{1,63}$"
# Text from outside never carries NUL (PostgreSQL cannot store it) nor, on one-line fields,
# other control characters.
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"
URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f]+$"


class UserBase(SQLModel):
    username: str = Field(max_length=64, schema_extra={"pattern": USERNAME_PATTERN})
    display_name: str = Field(default="", max_length=120, schema_extra={"pattern": ONE_LINE})


class UserCreate(UserBase):
    model_config = FORBID_EXTRA
    roles: list[Role] = Field(min_length=1)
    password: str = Field(min_length=12, max_length=256, schema_extra={"pattern": NO_NUL})


class UserChange(SQLModel):
    """What an admin changes of a person: their roles, whether they may sign in."""

    model_config = FORBID_EXTRA
    roles: list[Role] | None = Field(default=None, min_length=1)
    disabled: bool | None = None
    qualification: str | None = Field(
        default=None,
        max_length=100,
        schema_extra={"pattern": ONE_LINE},
        description="e.g. a registered-principal id, captured with each decision they sign",
    )


class UserPublic(UserBase):
    id: int
    roles: list[Role]
    qualification: str | None = None
    disabled: bool
    issuer: str | None = Field(
        default=None, description="the identity provider this account signs in through"
    )


class User(UserBase, table=True):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("username", name="uq_users_username"),
        UniqueConstraint("issuer", "subject", name="uq_users_identity"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    password_hash: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=254, description="for e-mail notifications")
    qualification: str | None = Field(
        default=None, max_length=100, description="e.g. a registered-principal id"
    )
    disabled: bool = Field(default=False)
    # An identity provider's account (records.identities): its issuer and subject. Null
    # for a local account, which signs in with a password.
    issuer: str | None = Field(default=None, max_length=255)
    subject: str | None = Field(default=None, max_length=255)
    # Tokens issued up to then are refused (records.sessions).
    sessions_revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class UserRole(SQLModel, table=True):
    """One row per role a user holds; queried by role to find a stage's reviewers."""

    __tablename__ = "user_roles"
    __table_args__ = (Index("ix_user_roles_role", "role"),)

    user_id: int = Field(
        foreign_key="users.id", primary_key=True, ondelete="CASCADE", sa_type=BigId
    )
    role: str = Field(primary_key=True, max_length=20)


# --- inbound posts ---------------------------------------------------------------------


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
    author_id: str | None = Field(default=None, max_length=200)
    identity_id: int | None = Field(
        default=None, foreign_key="customer_identities.id", sa_type=BigId
    )
    customer_id: int | None = Field(default=None, foreign_key="customers.id", sa_type=BigId)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", sa_type=BigId)
    created_at: datetime = _created()
    updated_at: datetime = _created()


# --- drafts, versions, decisions, publications -----------------------------------------

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
    created_at: datetime = _created()
    updated_at: datetime = _created()


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
    created_at: datetime = _created()
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
    at: datetime = _created()


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
    created_at: datetime = _created()
    updated_at: datetime = _created()


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


# --- notifications ----------------------------------------------------------------------


class Notification(SQLModel, table=True):
    """One event for one person. Written in the transaction of the transition that caused
    it, once per event and person (`event_key`), whatever retries."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_key", "recipient", name="uq_notifications_event_recipient"),
        Index("ix_notifications_inbox", "recipient", "id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    recipient: str = Field(max_length=64)
    event: str = Field(max_length=32)
    draft_id: int | None = Field(default=None, sa_type=BigId)
    post_id: int | None = Field(default=None, sa_type=BigId)
    message: str = Field(max_length=500)
    event_key: str = Field(max_length=200)
    in_app: bool = Field(default=True, description="shown in the person's in-app list")
    created_at: datetime = _created()
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


# --- channel accounts -------------------------------------------------------------------

ACCOUNT_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class ChannelAccountBase(SQLModel):
    name: str = Field(
        max_length=63,
        schema_extra={"pattern": ACCOUNT_NAME_PATTERN},
        description="also the inbound path: POST /api/v1/inbound/{name}",
    )
    channel: Channel
    source: str | None = Field(
        default=None,
        max_length=32,
        schema_extra={"pattern": r"^[a-z][a-z0-9_]{0,31}$"},
        description="the inbound adapter its deliveries go through (e.g. meta, webhook)",
    )
    settings: dict[str, str] = Field(
        default_factory=dict, sa_type=JSON, description="what is not secret (ids, base URLs)"
    )


class ChannelAccountCreate(ChannelAccountBase):
    model_config = FORBID_EXTRA
    credentials: dict[str, str] = Field(
        default_factory=dict,
        description="secrets (app secret, tokens): stored, never returned nor logged",
    )


class ChannelAccountPublic(ChannelAccountBase):
    id: int
    credential_names: list[str] = Field(description="which secrets are set (never their values)")
    created_at: datetime


class ChannelAccount(ChannelAccountBase, table=True):
    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("name", name="uq_channel_accounts_name"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    channel: Channel = Field(sa_type=String(32), nullable=False)
    # The credentials as JSON, sealed with AES-256-GCM (records.vault), bound to this
    # account's name: never stored in the clear.
    sealed_credentials: str = Field(sa_type=Text, nullable=False)
    created_by: str = Field(max_length=64)
    created_at: datetime = _created()


# --- rule sets --------------------------------------------------------------------------


class RuleSetRecord(SQLModel, table=True):
    """An uploaded rule set. The active one is the one activated last; with none, the
    shipped `policies/rules/default.yaml` is in force."""

    __tablename__ = "rule_sets"
    __table_args__ = (UniqueConstraint("activation", name="uq_rule_sets_activation"),)

    version: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=120)
    source: str = Field(sa_type=Text, nullable=False)
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime = _created()
    activation: int = Field(description="1 for the first activation, then one more each time")


# --- audit trail -----------------------------------------------------------------------


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
    placed_at: datetime = _created()
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


# --- draft API shapes ------------------------------------------------------------------

BODY_FIELD = Field(min_length=1, max_length=10_000, schema_extra={"pattern": NO_NUL})


TEMPLATE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


class DraftCreate(SQLModel):
    """Free text (`body`), or a pre-approved template with its variables filled in, in
    answer to a post, or to a conversation (its latest post)."""

    model_config = FORBID_EXTRA
    post_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    conversation_id: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="answer the conversation's latest post (instead of post_id)",
    )
    body: str | None = Field(
        default=None, min_length=1, max_length=10_000, schema_extra={"pattern": NO_NUL}
    )
    template_id: str | None = Field(
        default=None, max_length=100, schema_extra={"pattern": TEMPLATE_ID_PATTERN}
    )
    variables: dict[str, str | int] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _body_or_template(self) -> DraftCreate:
        if (self.post_id is None) == (self.conversation_id is None):
            raise ValueError("give either post_id or conversation_id, not both")
        if (self.body is None) == (self.template_id is None):
            raise ValueError("give either body or template_id (with variables), not both")
        if self.variables is not None and self.template_id is None:
            raise ValueError("variables go with a template_id")
        return self


class TemplateRender(SQLModel):
    model_config = FORBID_EXTRA
    variables: dict[str, str | int] = Field(default_factory=dict, max_length=50)
    channel: Channel | None = None


class PolicyCheck(SQLModel):
    """A dry run: the checks and route `body` would get on `channel` (or `post_id`'s)."""

    model_config = FORBID_EXTRA
    body: str = BODY_FIELD
    channel: Channel | None = None
    post_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    post_text: str | None = Field(default=None, max_length=20_000, schema_extra={"pattern": NO_NUL})

    @model_validator(mode="after")
    def _channel_or_post(self) -> PolicyCheck:
        if self.channel is None and self.post_id is None:
            raise ValueError("give channel or post_id")
        return self


class DraftUpdate(SQLModel):
    model_config = FORBID_EXTRA
    body: str = BODY_FIELD
    expected_version: int = Field(ge=1, le=1_000_000)


class DecisionCreate(SQLModel):
    model_config = FORBID_EXTRA
    stage: ReviewStage
    decision: DecisionKind
    version: int = Field(ge=1, le=1_000_000)
    comment: str | None = Field(default=None, max_length=4000, schema_extra={"pattern": NO_NUL})


class DecisionPublic(SQLModel):
    stage: str
    decision: str
    reviewer: str
    role: str | None = Field(description="the role decided in (a backup role if overdue)")
    version: int
    content_sha256: str | None = Field(description="the exact text decided on")
    comment: str | None
    at: datetime


class PublicationPublic(SQLModel):
    status: str
    channel: str
    version: int
    scheduled_at: datetime | None
    external_id: str | None
    external_url: str | None
    error: str | None


class VersionPublic(SQLModel):
    version: int
    body: str
    content_sha256: str
    created_by: str
    created_at: datetime


class TimelineEntry(SQLModel):
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    version: int | None


class DraftPublic(SQLModel):
    id: int
    post_id: int
    author: str
    status: DraftStatus
    stage: str | None
    version: int
    body: str
    content_sha256: str
    route: list[str]
    findings: list[dict[str, Any]]
    ruleset_version: str | None
    template_id: str | None
    template_version: str | None
    sla_due_at: datetime | None = Field(description="when the open stage's review is due")
    sla_breached: bool = Field(description="the open stage is overdue (escalated)")
    expires_at: datetime | None = Field(description="the post's reply deadline")
    created_at: datetime
    updated_at: datetime


class DraftView(DraftPublic):
    """The draft as every action answers: its decisions and latest publication too."""

    decisions: list[DecisionPublic]
    publication: PublicationPublic | None
    allowed_actions: list[Action] = Field(
        default_factory=list,
        description="what the caller may do with the draft now (lifecycle.rulebook)",
    )


class DraftDetail(DraftView):
    """`GET /drafts/{id}`: the view plus every version and the timeline."""

    versions: list[VersionPublic]
    timeline: list[TimelineEntry]


class OutboxMessage(SQLModel, table=True):
    """What the local outbox channel "posted"; one row per publication at most."""

    __tablename__ = "outbox_messages"
    __table_args__ = (UniqueConstraint("publication_key", name="uq_outbox_publication_key"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    publication_key: str = Field(max_length=100)
    channel: str = Field(max_length=32)
    in_reply_to: str = Field(max_length=200)
    body: str = Field(sa_type=Text, nullable=False)
    posted_at: datetime = _created()


class PublishCreate(SQLModel):
    model_config = FORBID_EXTRA
    at: AwareDatetime | None = Field(default=None, description="omit to publish now")


# Tables kept in modules of their own (imported here so Alembic and the tests see them).
from records.access_tables import RevokedToken as RevokedToken  # noqa: E402
from records.access_tables import SignInCounter as SignInCounter  # noqa: E402
