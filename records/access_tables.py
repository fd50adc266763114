"""The tables behind signing in: failed sign-in counters (`records.throttle`), kept in the
database so every API process sees the same count, and tokens revoked by signing out
(`records.sessions`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float
from sqlmodel import Field, SQLModel

from records.types import UTCDateTime


class SignInCounter(SQLModel, table=True):
    """One rate-limit window of failed sign-ins: `key` names the limit and a hash of the
    username or client address (never the name itself: people type passwords there)."""

    __tablename__ = "sign_in_counters"

    key: str = Field(primary_key=True, max_length=200)
    count: int = Field(default=0)
    expires_at: float = Field(sa_type=Float, index=True, description="epoch seconds")


class RevokedToken(SQLModel, table=True):
    """A token signed out before it expired; kept until it would have expired anyway.
    `jti` holds `records.sessions.token_key`: the SHA-256 of its issuer and id."""

    __tablename__ = "revoked_tokens"

    jti: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime = Field(sa_type=UTCDateTime)
