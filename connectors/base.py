"""The publisher interface: one implementation per channel, each small and alike.

`key` identifies one publication (draft and version). A publisher must be able to find a
reply it posted under that key, so that an attempt whose outcome is unknown (a timeout, a
worker that died after the request left) is looked up before it is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class Reply:
    key: str
    channel: str
    in_reply_to: str  # the inbound post's id on the platform
    body: str


@dataclass(frozen=True, kw_only=True)
class Posted:
    external_id: str
    url: str | None = None


class PublishRefused(Exception):
    """The channel refused the reply and asking again cannot help (say, a 401 or a 403):
    the draft becomes `publish_failed` with this reason, for a publisher to retry or
    abandon. Anything else a publisher raises is retried."""


class Publisher(Protocol):
    channel: str

    def post(self, reply: Reply) -> Posted: ...

    def lookup(self, key: str) -> Posted | None: ...
