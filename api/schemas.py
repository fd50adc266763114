"""Response shapes that are not one entity's family (those live in `records.*_models` and
`records.draft_shapes`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel

from records.cursor import MAX_ID

T = TypeVar("T")

# Ids are 64-bit on every database; anything larger names nothing (and must not reach SQL).
ResourceId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59-01:00 is past the last UTC datetime
        raise ValueError("the time is out of range once in UTC") from exc


# A time with its zone, as UTC: what filters compare with stored (UTC) times.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


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
