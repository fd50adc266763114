"""The tables behind signing in: failed sign-in counters (`records.throttle`), kept in the
database so every API process sees the same count."""

from __future__ import annotations

from sqlalchemy import Float
from sqlmodel import Field, SQLModel


class SignInCounter(SQLModel, table=True):
    """One rate-limit window of failed sign-ins: `key` names the limit and a hash of the
    username or client address (never the name itself: people type passwords there)."""

    __tablename__ = "sign_in_counters"

    key: str = Field(primary_key=True, max_length=200)
    count: int = Field(default=0)
    expires_at: float = Field(sa_type=Float, index=True, description="epoch seconds")
