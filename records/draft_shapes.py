"""The API's shapes for drafts: what a client sends (a draft, an edit, a decision, a
publish) and what it is answered (the draft with its versions, decisions and timeline)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, model_validator
from sqlmodel import Field, SQLModel

from lifecycle.words import Action, DecisionKind, DraftStatus, ReviewStage
from records.fields import FORBID_EXTRA, NO_NUL, Channel

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


class PublishCreate(SQLModel):
    model_config = FORBID_EXTRA
    at: AwareDatetime | None = Field(default=None, description="omit to publish now")
