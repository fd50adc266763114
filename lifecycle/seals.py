"""Sealed actions: the API vouches for every action it sends to a draft's workflow.

Whoever can reach the Temporal frontend can send an update with any actor and roles in
it. So the API, which authenticated the person, seals each action with an HMAC-SHA256 over
everything the workflow will believe: the workflow (the draft), the update's name (the
action) and id, the person and their roles, the request's fields (version, stage,
decision, text, time), the draft's author as the record has it, and when it was sealed.
The worker checks the seal before any validator looks at the request
(`workflows.interceptors`): a missing, forged, expired or replayed seal (another draft's,
another action's, another update's) is refused and nothing is written. A seal replayed on
the same update id is the same update, which Temporal applies once.

Pure (the standard library only), so the API and the worker share one definition of the
sealed message. Keys come from settings: the first signs, any of them verifies (rotation).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# How old a seal may be when the workflow first sees it, and how far ahead of the
# workflow's clock (the API's and the Temporal server's clocks differ a little).
MAX_AGE_MS = 5 * 60 * 1000
MAX_AHEAD_MS = 60 * 1000


@dataclass(frozen=True, kw_only=True)
class Seal:
    issued_ms: int  # when the API sealed it (Unix milliseconds)
    author: str  # the draft's author as the API's record has it
    mac: str  # hex HMAC-SHA256 of `message(...)`


class SealError(Exception):
    """The seal is missing, does not verify, or is out of date; the message says which."""


def message(
    *,
    workflow_id: str,
    update: str,
    update_id: str,
    issued_ms: int,
    author: str,
    request: Any,
) -> bytes:
    """The sealed bytes: canonical JSON of the claims and the request's fields (its seal
    left out)."""
    fields = {k: v for k, v in dataclasses.asdict(request).items() if k != "seal"}
    claims = {
        "workflow": workflow_id,
        "update": update,
        "update_id": update_id,
        "issued_ms": issued_ms,
        "author": author,
        "request": fields,
    }
    return json.dumps(
        claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
    ).encode()


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not sealable")


def _mac(key: str, sealed: bytes) -> str:
    return hmac.new(key.encode(), sealed, hashlib.sha256).hexdigest()


def seal(
    key: str,
    *,
    workflow_id: str,
    update: str,
    update_id: str,
    author: str,
    request: Any,
    now_ms: int,
) -> Seal:
    sealed = message(
        workflow_id=workflow_id,
        update=update,
        update_id=update_id,
        issued_ms=now_ms,
        author=author,
        request=request,
    )
    return Seal(issued_ms=now_ms, author=author, mac=_mac(key, sealed))


def verify(
    keys: Sequence[str],
    request: Any,
    *,
    workflow_id: str,
    update: str,
    update_id: str,
    now_ms: int,
) -> Seal:
    """The request's seal, if one of `keys` made it for exactly this workflow, update and
    request within the allowed age; else `SealError`."""
    found = getattr(request, "seal", None)
    if not isinstance(found, Seal):
        raise SealError("the action is not sealed by the API")
    sealed = message(
        workflow_id=workflow_id,
        update=update,
        update_id=update_id,
        issued_ms=found.issued_ms,
        author=found.author,
        request=request,
    )
    if not any(hmac.compare_digest(_mac(key, sealed), found.mac) for key in keys if key):
        raise SealError("the action's seal does not verify")
    age = now_ms - found.issued_ms
    if age > MAX_AGE_MS:
        raise SealError(f"the action's seal expired ({age // 1000} s old)")
    if age < -MAX_AHEAD_MS:
        raise SealError("the action's seal is dated in the future")
    return found
