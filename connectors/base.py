"""The publisher interface: one implementation per channel, each small and alike, found
by channel in the `countersign.publishers` entry-point group and built with its channel
account (`records.channels.Account`).

`key` identifies one publication (draft and version). A publisher must be able to find a
reply it posted (by the key where the platform keeps one, else by its parent and text), so
that an attempt whose outcome is unknown (a timeout, a worker that died after the request
left) is looked up before it is tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit


@dataclass(frozen=True, kw_only=True)
class Reply:
    key: str
    channel: str
    in_reply_to: str  # the inbound post's id on the platform
    body: str
    requested_at: datetime  # when this publication was first asked for; the same each try


def web_url(url: object) -> str | None:
    """`url` if it is an http(s) URL fit to store and to render as a link, else None: a
    platform's answer is untrusted input (a `javascript:` URL would run in our pages)."""
    if not isinstance(url, str) or len(url) > 2048:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    clean = not any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url)
    return url if parts.scheme in ("http", "https") and parts.netloc and clean else None


@dataclass(frozen=True, kw_only=True)
class Posted:
    """The platform's answer to a reply: its id there, and its web address if it gave one
    (only an http(s) URL is kept)."""

    external_id: str
    url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", web_url(self.url))


REASON_LIMIT = 80  # characters of a remote party's own words we keep


def remote_reason(text: object) -> str:
    """A remote party's reason, fit to keep in an error, a notification or the audit
    trail: its first 80 printable characters, on one line. The rest of its answer is
    never copied (an internal service reached by mistake must not leak its data)."""
    words = " ".join("".join(c for c in str(text) if c.isprintable() or c.isspace()).split())
    return words if len(words) <= REASON_LIMIT else words[: REASON_LIMIT - 1] + "\u2026"


class PublishRefused(Exception):
    """The channel refused the reply and asking again cannot help (say, a 401 or a 403):
    the draft becomes `publish_failed` with this reason, for a publisher to retry or
    abandon. Anything else a publisher raises is retried."""


# The longest wait a platform's answer is taken at its word for (X's rate windows are
# fifteen minutes); one asking for longer, say a year, is asked again after this.
MAX_WAIT = timedelta(minutes=15)


class RateLimited(Exception):
    """The channel asked us to wait (429): retried after `retry_after`, at most `MAX_WAIT`
    (THREATS: no input stalls the service)."""

    def __init__(self, message: str, retry_after: timedelta) -> None:
        super().__init__(message)
        self.retry_after = min(max(retry_after, timedelta(0)), MAX_WAIT)


class Publisher(Protocol):
    channel: str

    def post(self, reply: Reply) -> Posted: ...

    def lookup(self, reply: Reply) -> Posted | None: ...

    def delete(self, external_id: str) -> None:
        """Take a posted reply down; one already gone counts as deleted."""


@cache
def registered(group: str, name: str) -> Any:
    """What the `countersign.<group>` entry point `name` names (a class), or None."""
    found = entry_points(group=f"countersign.{group}", name=name)
    return next(iter(found)).load() if found else None


def publisher_class(channel: str) -> Any:
    """The publisher class registered for `channel`, or None."""
    return registered("publishers", channel)


T = TypeVar("T")


def until_refused(pages: Iterator[T], what: str) -> Iterator[T]:
    """An inbound stream's `pages` until the platform refuses it (a 4xx other than 429,
    logged): one stream's refusal (a revoked scope, a search the platform no longer takes)
    must not hold up the account's other streams."""
    try:
        yield from pages
    except PublishRefused as refused:
        logging.getLogger("countersign.inbound").warning(
            "%s was refused (%s); the other streams go on", what, refused
        )
