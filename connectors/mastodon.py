"""Mastodon (Mastodon.py): a reply is a status with `in_reply_to_id` and an
`Idempotency-Key` (the publication key), which Mastodon honours for an hour; after an
unknown outcome it is looked up among the account's own statuses by parent and text.

Account settings: `api_base` (the instance, e.g. https://mastodon.social), optionally
`account_id` (else asked for) and `timeout_seconds`; credential: `access_token`."""

from __future__ import annotations

import contextlib
import html
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
)

from connectors import egress
from connectors.base import (
    Posted,
    PublishRefused,
    RateLimited,
    Reply,
    remote_reason,
    until_refused,
)
from connectors.inbound import InboundPost

log = logging.getLogger("countersign.inbound")
_TAGS = re.compile(r"<[^<>]*>")  # no nesting: linear however many `<` a status has


class MastodonPublisher:
    channel = "mastodon"

    def __init__(self, account: Any) -> None:
        self.api = Mastodon(
            access_token=account.credentials["access_token"],
            api_base_url=account.settings["api_base"],
            request_timeout=float(account.settings.get("timeout_seconds", "10")),
            ratelimit_method="throw",  # Temporal does the waiting, not a sleeping thread
            version_check_mode="none",
            session=egress.guarded_session(),
        )
        self.account_id = account.settings.get("account_id")

    def post(self, reply: Reply) -> Posted:
        with _translated(self.api):
            status = self.api.status_post(
                reply.body, in_reply_to_id=reply.in_reply_to, idempotency_key=reply.key
            )
        return Posted(external_id=str(status["id"]), url=status.get("url"))

    def lookup(self, reply: Reply) -> Posted | None:
        with _translated(self.api):
            own = self.account_id or self.api.account_verify_credentials()["id"]
            for status in self.api.account_statuses(own, limit=40):
                parent = status.get("in_reply_to_id")
                if str(parent) == reply.in_reply_to and _text(status["content"]) == reply.body:
                    return Posted(external_id=str(status["id"]), url=status.get("url"))
        return None

    def delete(self, external_id: str) -> None:
        with _translated(self.api), contextlib.suppress(MastodonNotFoundError):
            self.api.status_delete(external_id)


@contextmanager
def _translated(api: Mastodon) -> Iterator[None]:
    """Mastodon.py's errors as the publishers' (`connectors.base`); anything else (network,
    5xx) is left to be retried, after a look-up."""
    try:
        yield
    except MastodonRatelimitError as error:
        reset = api.ratelimit_reset
        wait = max(float(reset) - time.time(), 1.0) if reset else 30.0
        raise RateLimited("Mastodon answered 429", timedelta(seconds=wait)) from error
    except MastodonAPIError as error:
        if isinstance(error, MastodonServerError):
            raise
        _, status, reason, message = (*error.args, None, None, None, None)[:4]
        stated = remote_reason(message or reason)
        raise PublishRefused(f"Mastodon refused the reply: {status} {stated}") from error
    except MastodonNetworkError as error:
        refused = _egress_refusal(error)
        if refused is not None:  # the account's URL points where we do not call
            raise refused from None
        raise


def _egress_refusal(error: BaseException) -> egress.EgressRefused | None:
    """Mastodon.py wraps whatever requests raised; the egress check's refusal inside."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, egress.EgressRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _text(content: str) -> str:
    """A status's HTML as the plain text that was posted."""
    return html.unescape(_TAGS.sub("", content.replace("<br />", "\n").replace("</p><p>", "\n\n")))


PAGE = 40


def poll(account: Any, position: str | None) -> Iterator[tuple[list[InboundPost], str]]:
    """The account's mentions and, for each of its `listen_terms`, the hashtag's timeline
    (Mastodon has no full-text search everywhere; a term is read as a hashtag), each after
    its position: batches oldest first, each with the position to keep once stored. A
    position from before listening (a bare notification id) is the mentions' own."""
    if position and not position.startswith("{"):
        position = json.dumps({"mentions": position})
    state: dict[str, str] = json.loads(position) if position else {}
    excluded = [w.casefold() for w in _listed(account.settings.get("listen_exclude", ""))]
    streams = [("mentions", mentions(account, state.get("mentions")))] + [
        (f"tag:{tag}", _tagged(account, tag, state.get(f"tag:{tag}")))
        for tag in _hashtags(account.settings.get("listen_terms", ""))
    ]
    for stream, pages in streams:
        for posts, last in until_refused(pages, f"Mastodon's {stream} stream"):
            state[stream] = last
            if stream != "mentions":  # exclusions narrow what listening finds
                posts = [p for p in posts if not any(w in p.text.casefold() for w in excluded)]
            yield posts, json.dumps(state, sort_keys=True)


def _listed(value: str) -> list[str]:
    return [term.strip() for term in value.split(",") if term.strip()]


def _hashtags(value: str) -> list[str]:
    """Each listening term as a hashtag: `#AcmeCard` and `Acme Card` are `acmecard`."""
    tags = ["".join(c for c in term if c.isalnum() or c == "_").lower() for term in _listed(value)]
    return list(dict.fromkeys(tag for tag in tags if tag))


def _tagged(
    account: Any, tag: str, since_id: str | None
) -> Iterator[tuple[list[InboundPost], str]]:
    api = MastodonPublisher(account).api
    page = int(account.settings.get("page_size", PAGE))
    cursor = since_id
    while True:
        with _translated(api):
            if cursor is None:
                found = api.timeline_hashtag(tag, limit=page)
            else:
                found = api.timeline_hashtag(tag, min_id=cursor, limit=page)
        statuses = sorted(found, key=lambda s: int(s["id"]))
        if not statuses:
            return
        cursor = str(statuses[-1]["id"])
        yield [_inbound(status, origin="listening") for status in statuses], cursor
        if since_id is None:
            return


def mentions(
    account: Any, since_id: str | None, page: int = PAGE
) -> Iterator[tuple[list[InboundPost], str]]:
    """The account's mentions after the notification `since_id`, a page at a time, oldest
    page first: (its posts, the page's newest notification id). A caller that stores a page
    before moving its position on never skips a mention. With no `since_id`, the newest
    page only (a new poller starts with the latest mentions, not the account's history)."""
    api = MastodonPublisher(account).api
    page = int(account.settings.get("page_size", page))
    cursor = since_id
    while True:
        with _translated(api):
            if cursor is None:
                found = api.notifications(types=["mention"], limit=page)
            else:
                found = api.notifications(types=["mention"], min_id=cursor, limit=page)
        notes = sorted(found, key=lambda n: int(n["id"]))
        if not notes:
            return
        statuses = [n["status"] for n in notes if n.get("status")]
        cursor = str(notes[-1]["id"])
        yield [_inbound(status, origin="mention") for status in statuses], cursor
        if since_id is None:
            return


def _inbound(status: Any, *, origin: str) -> InboundPost:
    created = status["created_at"]
    if isinstance(created, str):
        created = datetime.fromisoformat(created.replace("Z", "+00:00"))
    account = status["account"]
    parent = status.get("in_reply_to_id")
    followers = account.get("followers_count")
    return InboundPost(
        channel="mastodon",
        external_id=str(status["id"]),
        author="@" + str(account["acct"]),
        text=_text(status["content"]),
        url=str(status.get("url") or status["uri"]),
        received_at=created if created.tzinfo else created.replace(tzinfo=UTC),
        origin="reply" if origin == "mention" and parent else origin,
        in_reply_to=str(parent) if parent else None,
        author_profile={
            "id": str(account.get("id") or account["acct"]),
            "display_name": account.get("display_name") or None,
            "followers": followers if isinstance(followers, int) else None,
            "profile_url": account.get("url"),
            "language": status.get("language") or None,
        },
    )
