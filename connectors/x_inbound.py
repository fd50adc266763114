"""X inbound (API v2): the account's mentions (`GET /2/users/:id/mentions`) and, when the
account lists brand terms, posts that talk about the brand (`GET /2/tweets/search/recent`),
each with its author (`expansions=author_id`), its parent and its thread's root.

Both streams page newest first. A stream's position is what is stored: everything up to
`since`, and, while a sweep through newer posts is under way, its newest id (`top`) and the
oldest stored so far (`until`). Each page is handed over with the position to keep once it
is stored, so a round cut short (a rate limit, a crash) goes on where it stopped, and a
page read twice finds its posts known (a post is its channel and id). When the sweep
reaches `since`, `since` becomes `top`. Rate limits: a 429 waits until `x-rate-limit-reset`,
as does a page that leaves `x-rate-limit-remaining` at 0. A post X sends in a shape we
cannot read is skipped with a warning, not retried forever.

Account settings (beside the publisher's `user_id`, `api_base`, `timeout_seconds`):
`listen_terms` (comma-separated brand names, products, hashtags) and `listen_exclude`
(comma-separated words whose posts are not wanted), `page_size` (5 to 100, default 100);
credential `bearer_token`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from connectors import egress
from connectors.base import PublishRefused, RateLimited
from connectors.http import raise_for_refusal, retry_after
from connectors.inbound import InboundPost

log = logging.getLogger("countersign.inbound")
MAX_PAGES = 10  # per stream and round: at most 1,000 posts held before they are stored
PAGE_SIZE = 100
TWEET_FIELDS = "created_at,conversation_id,referenced_tweets,lang,author_id"
USER_FIELDS = "username,name,public_metrics,verified"


def poll(account: Any, position: str | None) -> Iterator[tuple[list[InboundPost], str]]:
    """The posts after `position`, a page at a time, each with the position to keep once
    it is stored (see the module's docstring)."""
    client = _Client(account)
    state: dict[str, dict[str, str]] = json.loads(position) if position else {}
    streams: list[tuple[str, str, dict[str, str]]] = [
        ("mentions", f"/2/users/{client.user_id}/mentions", {})
    ]
    query = listening_query(account.settings)
    if query:
        streams.append(("listening", "/2/tweets/search/recent", {"query": query}))
    for stream, path, params in streams:
        try:
            for posts, sweep in client.sweep(path, params, state.get(stream, {}), origin=stream):
                state[stream] = sweep
                yield posts, json.dumps(state, sort_keys=True)
        except PublishRefused as refused:  # a 4xx other than 429: asking again cannot help
            if stream == "listening" and state.get(stream):
                # Recent search refuses a since_id older than its seven days: a quiet term
                # starts afresh from the newest posts, and the mentions go on meanwhile.
                log.warning("X refused the brand search (%s); it starts afresh", refused)
                state[stream] = {}
                yield [], json.dumps(state, sort_keys=True)
            else:
                log.warning("X refused the %s stream (%s); the others go on", stream, refused)


def listening_query(settings: dict[str, str]) -> str:
    """X's search query for the account's brand terms: any of them, none of the excluded
    words, no retweets (the original is found itself)."""
    terms = [t.strip() for t in settings.get("listen_terms", "").split(",") if t.strip()]
    if not terms:
        return ""
    excluded = [t.strip() for t in settings.get("listen_exclude", "").split(",") if t.strip()]
    quoted = " OR ".join(_quoted(t) for t in terms)
    return f"({quoted}) " + "".join(f"-{_quoted(t)} " for t in excluded) + "-is:retweet"


def _quoted(term: str) -> str:
    plain = term.replace('"', "")
    return plain if plain.replace("#", "").replace("@", "").isalnum() else f'"{plain}"'


class _Client:
    def __init__(self, account: Any) -> None:
        self.base = account.settings.get("api_base", "https://api.x.com").rstrip("/")
        self.user_id = account.settings["user_id"]
        self.timeout = float(account.settings.get("timeout_seconds", "10"))
        self.page_size = int(account.settings.get("page_size", PAGE_SIZE))
        self.headers = {"Authorization": f"Bearer {account.credentials['bearer_token']}"}

    def sweep(
        self, path: str, extra: dict[str, str], sweep: dict[str, str], *, origin: str
    ) -> Iterator[tuple[list[InboundPost], dict[str, str]]]:
        """The pages of one stream newer than `sweep["since"]` (everything up to it is
        stored), newest first, each with the stream's position once it is stored: while
        a sweep is under way, its newest id (`top`) and the oldest stored so far
        (`until`), from which the next page, or the next round, goes on. With no `since`
        (a new account), the newest page only. Raises RateLimited when X says to wait."""
        params = {
            **extra,
            "max_results": str(self.page_size),
            "tweet.fields": TWEET_FIELDS,
            "expansions": "author_id",
            "user.fields": USER_FIELDS,
        }
        sweep = dict(sweep)
        for _ in range(MAX_PAGES):
            asked = dict(params)
            if "since" in sweep:
                asked["since_id"] = sweep["since"]
            if "until" in sweep:
                asked["until_id"] = sweep["until"]
            answer = egress.request(
                "GET", f"{self.base}{path}", params=asked, headers=self.headers,
                timeout=self.timeout,
            )  # fmt: skip
            raise_for_refusal(answer, "X")
            page = answer.json()
            meta = page.get("meta", {})
            users = {u["id"]: u for u in page.get("includes", {}).get("users", [])}
            posts = []
            for tweet in page.get("data", []):
                try:
                    posts.append(_inbound(tweet, users, origin))
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    log.warning("an X post we cannot read (%r): skipped", exc)
            if meta.get("newest_id"):
                sweep.setdefault("top", meta["newest_id"])
            if meta.get("next_token") and "since" in sweep and meta.get("oldest_id"):
                sweep["until"] = meta["oldest_id"]  # older pages remain
                yield posts, dict(sweep)
            else:  # the sweep is done: everything up to its newest post is stored
                done = (
                    {"since": sweep["top"]}
                    if "top" in sweep
                    else {k: v for k, v in sweep.items() if k == "since"}
                )
                yield posts, done
                return
            if answer.headers.get("x-rate-limit-remaining") == "0":
                raise RateLimited("X's rate limit is spent for now", retry_after(answer))


def _inbound(tweet: dict[str, Any], users: dict[str, Any], origin: str) -> InboundPost:
    author = users.get(tweet.get("author_id", ""), {})
    username = author.get("username") or tweet.get("author_id") or "unknown"
    parents = [r["id"] for r in tweet.get("referenced_tweets", []) if r["type"] == "replied_to"]
    if origin == "mentions":
        origin = "reply" if parents else "mention"
    created = str(tweet["created_at"])
    return InboundPost(
        channel="x",
        external_id=tweet["id"],
        author=f"@{username}",
        text=tweet["text"],
        url=f"https://x.com/{username}/status/{tweet['id']}",
        received_at=datetime.fromisoformat(created.replace("Z", "+00:00")),
        origin=origin,
        in_reply_to=parents[0] if parents else None,
        root_id=tweet.get("conversation_id"),
        author_profile={
            "id": tweet.get("author_id") or username,
            "display_name": author.get("name"),
            "followers": author.get("public_metrics", {}).get("followers_count"),
            "verified": author.get("verified"),
            "profile_url": f"https://x.com/{username}",
            "language": tweet.get("lang") if tweet.get("lang") not in (None, "und") else None,
        },
    )
