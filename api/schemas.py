"""Response shapes that are not one entity's family (those live in `records.models`)."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Path
from pydantic import BaseModel

from records.cursor import MAX_ID

T = TypeVar("T")

# Ids are 64-bit on every database; anything larger names nothing (and must not reach SQL).
ResourceId = Annotated[int, Path(ge=1, le=MAX_ID)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    database: bool
    temporal: bool
