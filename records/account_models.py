"""What an admin configures: channel accounts (a channel's credentials and inbound path)
and uploaded rule sets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from records.fields import FORBID_EXTRA, Channel, created
from records.types import BigId

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
    created_at: datetime = created()


class RuleSetRecord(SQLModel, table=True):
    """An uploaded rule set. The active one is the one activated last; with none, the
    shipped `policies/rules/default.yaml` is in force."""

    __tablename__ = "rule_sets"
    __table_args__ = (UniqueConstraint("activation", name="uq_rule_sets_activation"),)

    version: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=120)
    source: str = Field(sa_type=Text, nullable=False)
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime = created()
    activation: int = Field(description="1 for the first activation, then one more each time")
