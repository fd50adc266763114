"""Bluesky inbound: the account's notifications that are posts to us (mentions, replies,
quotes: `app.bsky.notification.listNotifications`) and, when the account lists brand
terms, posts that talk about the brand (`app.bsky.feed.searchPosts`, one search per term,
newest first).

Both page newest first with an opaque cursor. A stream's position is what is stored: every
post indexed up to `since`, and, while a sweep through newer posts is under way, the newest
one it met (`top`) and the cursor of the page after the last one stored (`cursor`). Each
page is handed over with the position to keep once it is stored, so a round cut short (a
rate limit, a crash) goes on where it stopped; when a sweep reaches `since` (or the end),
`since` becomes `top`. A new account starts from its newest page.

Account settings (beside the publisher's `handle`, `service`, `timeout_seconds`):
`listen_terms`, `listen_exclude` (comma-separated) and `page_size` (1 to 100, default 50).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from connectors.base import until_refused
from connectors.bluesky import BlueskyPublisher
from connectors.inbound import InboundPost

log = logging.getLogger("countersign.inbound")
MAX_PAGES = 10  # per stream and round
LAG = timedelta(minutes=2)
PAGE_SIZE = 50
# Notification reasons that are posts to us, and the origin each is stored with.
POST_REASONS = {"mention": "mention", "reply": "reply", "quote": "mention"}
Page = tuple[list[Any], str | None]  # (items, the cursor of the next older page)


def poll(account: Any, position: str | None) -> Iterator[tuple[list[InboundPost], str]]:
    publisher = BlueskyPublisher(account)
    size = int(account.settings.get("page_size", PAGE_SIZE))
    state: dict[str, dict[str, str]] = json.loads(position) if position else {}
    terms = _terms(account.settings.get("listen_terms", ""))
    excluded = [t.casefold() for t in _terms(account.settings.get("listen_exclude", ""))]
    with publisher.session() as client:

        def notifications(cursor: str | None) -> Page:
            answer = client.app.bsky.notification.list_notifications(
                params={"limit": size, **({"cursor": cursor} if cursor else {})}
            )
            return list(answer.notifications), answer.cursor

        streams: list[tuple[str, Callable[[str | None], Page], str | None]] = [
            ("notifications", notifications, None)
        ]
        for term in terms:

            def search(cursor: str | None, term: str = term) -> Page:
                params = {"q": term, "sort": "latest", "limit": size}
                answer = client.app.bsky.feed.search_posts(
                    params={**params, **({"cursor": cursor} if cursor else {})}
                )
                return list(answer.posts), answer.cursor

            streams.append((f"listening:{term}", search, "listening"))
        for stream, read, origin in streams:
            pages = _sweep(read, state.get(stream, {}))
            for items, sweep in until_refused(pages, f"Bluesky's {stream} stream"):
                state[stream] = sweep
                found = [_inbound(item, origin) for item in items]
                # Exclusions narrow what listening finds; a post to us is always kept.
                kept = [
                    post for post in found
                    if post is not None
                    and (origin is None or not any(w in post.text.casefold() for w in excluded))
                ]  # fmt: skip
                yield kept, json.dumps(state, sort_keys=True)


def _sweep(
    read: Callable[[str | None], Page], sweep: dict[str, str]
) -> Iterator[tuple[list[Any], dict[str, str]]]:
    """One stream's pages newer than `sweep["since"]`, each with the position to keep."""
    sweep = dict(sweep)
    for _ in range(MAX_PAGES):
        items, cursor = read(sweep.get("cursor"))
        since = sweep.get("since")
        # `>=`: a post indexed in the same instant as `since` may come later (known ones
        # are found known, so reading one twice costs nothing).
        newer = [i for i in items if since is None or _at(i.indexed_at) >= _at(since)]
        if newer:
            sweep.setdefault("top", max((i.indexed_at for i in newer), key=_at))
        reached = since is None or len(newer) < len(items) or not cursor
        if reached:
            top = sweep.get("top", since)
            yield newer, ({"since": _lagging(top)} if top else {})
            return
        sweep["cursor"] = str(cursor)
        yield newer, dict(sweep)


def _lagging(top: str) -> str:
    """The next sweep's `since`: `LAG` behind the newest post met, so a post the AppView
    indexes late (its `indexedAt` a little older than what was already seen) is still
    read."""
    return (_at(top) - LAG).isoformat()


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _terms(listed: str) -> list[str]:
    return [term.strip() for term in listed.split(",") if term.strip()]


def _inbound(item: Any, origin: str | None) -> InboundPost | None:
    """A notification or a post view as a post (None: not a post to us, or unreadable)."""
    if origin is None:
        origin = POST_REASONS.get(item.reason)
        if origin is None:
            return None
    try:
        record, author = item.record, item.author
        reply = getattr(record, "reply", None)
        rkey = item.uri.rsplit("/", 1)[1]
        languages = getattr(record, "langs", None) or []
        return InboundPost(
            channel="bluesky",
            external_id=item.uri,
            author=f"@{author.handle}",
            text=record.text,
            url=f"https://bsky.app/profile/{author.handle}/post/{rkey}",
            received_at=_at(record.created_at),
            origin=origin,
            in_reply_to=reply.parent.uri if reply is not None else None,
            root_id=reply.root.uri if reply is not None else item.uri,
            author_profile={
                "id": author.did,
                "display_name": getattr(author, "display_name", None),
                "profile_url": f"https://bsky.app/profile/{author.handle}",
                "language": languages[0][:16] if languages else None,
            },
        )
    except (AttributeError, IndexError, TypeError, ValueError) as exc:
        log.warning("a Bluesky post we cannot read (%r): skipped", exc)
        return None
