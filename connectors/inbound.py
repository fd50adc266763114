"""Inbound adapters: a platform's delivery (a webhook POST) verified, parsed and normalised
to posts. One small class per source, found by name in the `countersign.inbound` entry-point
group (see pyproject.toml), so a new source is a package, not an edit here."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol

from connectors.base import registered


@dataclass(frozen=True, kw_only=True)
class InboundPost:
    """A post as every source gives it (`records.post_models.PostCreate` fields)."""

    channel: str
    external_id: str
    author: str
    text: str
    url: str
    received_at: datetime
    origin: str = "webhook"  # mention | reply | listening | webhook (records.fields.Origin)
    in_reply_to: str | None = None
    root_id: str | None = None
    author_profile: dict[str, Any] | None = None  # records.post_models.AuthorProfile's fields


class BadSignature(Exception):
    """The delivery is not signed with the account's secret: refused, nothing stored."""


class Malformed(Exception):
    """The delivery is signed but not something this source sends."""


class InboundAdapter(Protocol):
    """`credentials` and `settings` are the channel account's (`records.channels.Account`)."""

    def verify(
        self, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str]
    ) -> None:
        """Raise `BadSignature` unless the body is signed by the account's secret."""

    def parse(self, body: bytes, channel: str, settings: Mapping[str, str]) -> list[InboundPost]:
        """The posts in a verified delivery (none for events that are not new comments);
        `Malformed` if it is not this source's shape."""


def sign(secret: str, body: bytes) -> str:
    """`sha256=` + the hex HMAC-SHA256 of `body` under `secret`: how Countersign signs what
    it sends, and how Meta and the signed JSON source sign what they send it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_hmac(secret: str | None, body: bytes, signature: str | None) -> None:
    """Constant-time check that `signature` is `sign(secret, body)`."""
    if not secret:
        raise BadSignature("the channel account has no secret to check signatures with")
    if not signature or not signature.startswith("sha256="):
        raise BadSignature("the signature header is missing or does not start with 'sha256='")
    if not hmac.compare_digest(sign(secret, body), signature):
        raise BadSignature("the signature does not match the body")


@cache
def adapter(source: str) -> InboundAdapter:
    """The adapter registered under `source`; KeyError if none is."""
    adapter_class = registered("inbound", source)
    if adapter_class is None:
        raise KeyError(source)
    instance: InboundAdapter = adapter_class()
    return instance


def sources() -> list[str]:
    return sorted(e.name for e in entry_points(group="countersign.inbound"))
