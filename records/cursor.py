"""Opaque keyset cursors: the sort key of the last row of a page, base64url JSON."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from records.errors import Invalid

MAX_ID = 2**63 - 1  # the largest id any of our databases stores


def encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Invalid("cursor is not one this API issued", field="cursor") from exc
    if not isinstance(key, list) or len(key) != arity:
        raise Invalid("cursor is not one this API issued", field="cursor")
    return key


def time_and_id(after: str, tag: str | None = None) -> tuple[datetime, int]:
    """A (timestamp, id) keyset cursor as issued by `encode([at.isoformat(), id])`, or by
    `encode([tag, at.isoformat(), id])` for a list in another order: a cursor of one
    order is refused by another (its timestamp is of a different column)."""
    if tag is None:
        at, row_id = decode(after, 2)
    else:
        given, at, row_id = decode(after, 3)
        if given != tag:
            raise Invalid("cursor is not one this API issued", field="cursor")
    try:
        key = (datetime.fromisoformat(at), int(row_id))
    except (TypeError, ValueError) as exc:
        raise Invalid("cursor is not one this API issued", field="cursor") from exc
    if not 0 < key[1] <= MAX_ID or key[0].tzinfo is None:
        raise Invalid("cursor is not one this API issued", field="cursor")
    return key
