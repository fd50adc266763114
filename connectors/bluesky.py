"""Bluesky (atproto): a reply is an `app.bsky.feed.post` record whose `reply` holds strong
refs (uri and cid) to its parent, the inbound post, and to its thread's root: the parent's
own root when the parent is itself a reply, else the parent.

The record key is a TID made from the publication (the time it was first asked for, and
its key), the same on every attempt: a reply is looked up with `getRecord` by that key,
and a second `createRecord` under it cannot make a second post.

Account settings: `handle`, optionally `service` (the PDS, default https://bsky.social)
and `timeout_seconds`; credential: `app_password`. An inbound post's id is its at:// URI.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from atproto import Client, models
from atproto_client.exceptions import (
    BadRequestError,
    RateLimitExceededError,
    RequestException,
    UnauthorizedError,
)
from atproto_client.request import Request

from connectors import egress
from connectors.base import Posted, PublishRefused, RateLimited, Reply, remote_reason

DEFAULT_SERVICE = "https://bsky.social"
_S32 = "234567abcdefghijklmnopqrstuvwxyz"  # the base32 "sortable" alphabet of TIDs
# Logged-in clients, one per account: Bluesky allows few new sessions a day (createSession
# is rate-limited), and a client refreshes its own session before it expires.
_sessions: dict[tuple[str, str, str], Client] = {}
_sessions_lock = threading.Lock()


class BlueskyPublisher:
    channel = "bluesky"

    def __init__(self, account: Any) -> None:
        self.service = account.settings.get("service", DEFAULT_SERVICE).rstrip("/")
        self.handle = account.settings["handle"]
        self.timeout = float(account.settings.get("timeout_seconds", "10"))
        self.password = account.credentials["app_password"]

    def post(self, reply: Reply) -> Posted:
        with self.session() as client:
            parent, root = _thread(client, reply.in_reply_to)
            record = models.AppBskyFeedPost.Record(
                text=reply.body,
                created_at=reply.requested_at.isoformat().replace("+00:00", "Z"),
                reply=models.AppBskyFeedPost.ReplyRef(parent=parent, root=root),
            )
            created = client.app.bsky.feed.post.create(self.handle, record, rkey=record_key(reply))
        return _posted(created.uri)

    def lookup(self, reply: Reply) -> Posted | None:
        with self.session() as client:
            try:
                found = client.app.bsky.feed.post.get(self.handle, record_key(reply))
            except BadRequestError as error:
                if _error_name(error) == "RecordNotFound":
                    return None
                raise
        return _posted(found.uri)

    def delete(self, external_id: str) -> None:
        """Delete the record (deleting one that is gone succeeds)."""
        repo, _, rkey = external_id.removeprefix("at://").split("/")
        with self.session() as client:
            client.app.bsky.feed.post.delete(repo, rkey)

    @contextmanager
    def session(self) -> Iterator[Client]:
        """A logged-in client; the platform's errors as the publishers' (`connectors.base`).
        A session the server no longer takes is dropped, so the next attempt logs in anew."""
        account = (self.service, self.handle, self.password)
        with _sessions_lock:
            client = _sessions.get(account)
            try:
                if client is None:
                    request = Request(timeout=self.timeout, transport=egress.guarded_transport())
                    client = Client(self.service, request=request)
                    client.login(self.handle, self.password, fetch_bsky_profile=False)
                    _sessions[account] = client
            except UnauthorizedError as error:
                raise PublishRefused(f"Bluesky refused the login: {_reason(error)}") from error
        try:
            yield client
        except UnauthorizedError as error:
            with _sessions_lock:
                _sessions.pop(account, None)
            raise RuntimeError(f"Bluesky refused the session: {_reason(error)}") from error
        except RateLimitExceededError as error:
            raise RateLimited("Bluesky answered 429", _wait(error)) from error
        except BadRequestError as error:
            raise PublishRefused(f"Bluesky refused the reply: 400 {_reason(error)}") from error


def record_key(reply: Reply) -> str:
    """The reply's TID: microseconds since the epoch, then a 10-bit clock id from its key."""
    micros = int(reply.requested_at.timestamp() * 1_000_000)
    clock = int.from_bytes(hashlib.sha256(reply.key.encode()).digest()[:2]) & 0x3FF
    return _s32(micros).rjust(11, "2") + _s32(clock).rjust(2, "2")


def _s32(number: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 32)
        digits = _S32[digit] + digits
    return digits


def _thread(client: Client, uri: str) -> tuple[Any, Any]:
    """Strong refs (`com.atproto.repo.strongRef`) to the post replied to and to its
    thread's root."""
    found = client.get_posts([uri]).posts
    if not found:
        raise PublishRefused(f"Bluesky has no post {uri} to reply to")
    parent = models.ComAtprotoRepoStrongRef.Main(uri=found[0].uri, cid=found[0].cid)
    thread = getattr(found[0].record, "reply", None)
    return parent, (thread.root if thread is not None else parent)


def _posted(uri: str) -> Posted:
    repo, _, rkey = uri.removeprefix("at://").split("/")
    return Posted(external_id=uri, url=f"https://bsky.app/profile/{repo}/post/{rkey}")


def _error_name(error: RequestException) -> str | None:
    content = error.response.content if error.response is not None else None
    return getattr(content, "error", None)


def _reason(error: RequestException) -> str:
    content = error.response.content if error.response is not None else None
    name, message = getattr(content, "error", None), getattr(content, "message", None)
    stated = ": ".join(str(part) for part in (name, message) if part)
    return remote_reason(stated) or type(error).__name__


def _wait(error: RequestException) -> timedelta:
    """Bluesky's `ratelimit-reset` (epoch seconds), else `Retry-After`, else 30 s."""
    headers = {k.lower(): v for k, v in (error.response.headers if error.response else {}).items()}
    reset, after = headers.get("ratelimit-reset"), headers.get("retry-after")
    if reset and reset.isdigit():
        return max(datetime.fromtimestamp(int(reset), UTC) - datetime.now(UTC), timedelta(0))
    if after and after.isdigit():
        return timedelta(seconds=int(after))
    return timedelta(seconds=30)
