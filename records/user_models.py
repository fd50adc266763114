"""People who sign in, and the roles each holds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from lifecycle.words import Role
from records.fields import FORBID_EXTRA, NO_NUL, ONE_LINE, USERNAME_PATTERN, created
from records.types import BigId, UTCDateTime


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
    created_at: datetime = created()
    updated_at: datetime = created()


class UserRole(SQLModel, table=True):
    """One row per role a user holds; queried by role to find a stage's reviewers."""

    __tablename__ = "user_roles"
    __table_args__ = (Index("ix_user_roles_role", "role"),)

    user_id: int = Field(
        foreign_key="users.id", primary_key=True, ondelete="CASCADE", sa_type=BigId
    )
    role: str = Field(primary_key=True, max_length=20)
