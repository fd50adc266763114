"""A local fake of X's API v2, on 127.0.0.1: `GET /2/users/:id/mentions` and
`GET /2/tweets/search/recent` as X answers them (newest first, `since_id`, `until_id`,
`max_results`, `next_token`/`pagination_token`, `expansions=author_id` users in
`includes`, the `x-rate-limit-*` headers, 429 when the budget is spent), and the
publisher's side (`POST /2/tweets` as a reply, `GET /2/users/:id/tweets`), so a reply we
publish is in the thread the customer answers next.

Run on its own for `make run` (the README's "Trying the channels"):

    .venv/bin/python -m tests.fake_x_api --port 8701

and add a customer's post with `POST /_fake/tweets {"text", "author", "reply_to"}`."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes import TOKEN
from tests.helpers import JsonHandler, offer_until_interrupted, serve

USER_ID = "42"  # the account's own id


@dataclass
class XApi:
    tweets: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    budget: int | None = None  # requests left in the window (None: no limit)
    fail: list[int] = field(default_factory=list)  # request numbers answered 500
    search_refuses: bool = False  # search answers 400 (as for a since_id over 7 days old)
    requests: list[str] = field(default_factory=list)
    ours: list[dict[str, Any]] = field(default_factory=list)  # replies we published
    refused: int = 0  # 429s answered
    url: str = ""

    def tweet(
        self,
        n: int,
        text: str,
        *,
        author: str = "501",
        mentions_us: bool = True,
        reply_to: int | None = None,
        root: int | None = None,
    ) -> str:
        tweet_id = str(1_900_000_000_000_000_000 + n)
        self.users.setdefault(
            author,
            {"id": author, "username": f"user{author}", "name": f"User {author}",
             "public_metrics": {"followers_count": int(author) * 10}, "verified": False},
        )  # fmt: skip
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": text,
            "author_id": author,
            "created_at": f"2026-11-30T08:{n // 60:02d}:{n % 60:02d}.000Z",
            "conversation_id": str(1_900_000_000_000_000_000 + (root or n)),
            "lang": "en",
            "_mentions_us": mentions_us,
        }
        if reply_to is not None:
            parent = str(1_900_000_000_000_000_000 + reply_to)
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": parent}]
        self.tweets.append(tweet)
        return tweet_id


def _terms(query: str) -> tuple[list[str], list[str]]:
    """The words a search query asks for and those it excludes (the subset we build)."""
    wanted, excluded = [], []
    for token in re.findall(r'-?"[^"]+"|-?\S+', query.replace("(", " ").replace(")", " ")):
        if token in ("OR", "-is:retweet"):
            continue
        bare = token.lstrip("-").strip('"').lower()
        (excluded if token.startswith("-") else wanted).append(bare)
    return wanted, excluded


@contextmanager
def running_x_api(port: int = 0) -> Iterator[XApi]:
    state = XApi()

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            sent = json.loads(self.body() or b"{}")
            if self.path == "/_fake/tweets":  # a customer posts (for trying it by hand)
                n = len(state.tweets) + 1
                parent = sent.get("reply_to")
                tweet_id = state.tweet(n, str(sent.get("text", "hello")),
                                       author=str(sent.get("author", "501")),
                                       mentions_us=bool(sent.get("mentions_us", True)))  # fmt: skip
                if parent:
                    state.tweets[-1]["referenced_tweets"] = [{"type": "replied_to", "id": parent}]
                    state.tweets[-1]["conversation_id"] = _conversation_of(state, parent)
                self.answer(201, {"data": {"id": tweet_id}})
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.answer(401, {"title": "Unauthorized", "status": 401})
                return
            parent = sent["reply"]["in_reply_to_tweet_id"]
            tweet_id = str(1_800_000_000_000_000_000 + len(state.ours) + 1)
            state.ours.append({
                "id": tweet_id, "text": sent["text"], "author_id": USER_ID,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "conversation_id": _conversation_of(state, parent),
                "referenced_tweets": [{"type": "replied_to", "id": parent}],
            })  # fmt: skip
            self.answer(201, {"data": {"id": tweet_id, "text": sent["text"]}})

        def do_GET(self) -> None:
            state.requests.append(self.path)
            reset = {"x-rate-limit-reset": str(int(time.time()) + 1)}
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.answer(401, {"title": "Unauthorized", "status": 401})
                return
            if len(state.requests) in state.fail:
                self.answer(503, {"title": "Service Unavailable"})
                return
            if state.budget is not None:
                if state.budget <= 0:
                    state.budget = 3  # the window resets
                    state.refused += 1
                    self.answer(429, {"title": "Too Many Requests"}, **reset)
                    return
                state.budget -= 1
            split = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(split.query).items()}
            if split.path == f"/2/users/{USER_ID}/tweets":  # ours, for the publisher's look-up
                self.answer(200, {"data": list(reversed(state.ours))})
                return
            if split.path == f"/2/users/{USER_ID}/mentions":
                found = [t for t in state.tweets if t["_mentions_us"]]
            elif split.path == "/2/tweets/search/recent" and state.search_refuses:
                self.answer(400, {"title": "Invalid Request", "detail": "since_id too old"})
                return
            elif split.path == "/2/tweets/search/recent":
                wanted, excluded = _terms(query["query"])
                found = [
                    t for t in state.tweets
                    if any(w in t["text"].lower() for w in wanted)
                    and not any(x in t["text"].lower() for x in excluded)
                ]  # fmt: skip
            else:
                self.answer(404, {"title": "Not Found"})
                return
            if "since_id" in query:
                found = [t for t in found if int(t["id"]) > int(query["since_id"])]
            if "until_id" in query:
                found = [t for t in found if int(t["id"]) < int(query["until_id"])]
            found.sort(key=lambda t: int(t["id"]), reverse=True)
            start = int(query.get("pagination_token", "0"))
            size = int(query.get("max_results", "10"))
            page = found[start : start + size]
            meta: dict[str, Any] = {"result_count": len(page)}
            if page:
                meta |= {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
            if start + size < len(found):
                meta["next_token"] = str(start + size)
            authors = {t["author_id"] for t in page}
            body = {
                "data": [{k: v for k, v in t.items() if not k.startswith("_")} for t in page],
                "includes": {"users": [state.users[a] for a in sorted(authors)]},
                "meta": meta,
            }
            if not page:
                body = {"meta": meta}
            remaining = "99" if state.budget is None else str(state.budget)
            self.answer(200, body, **{"x-rate-limit-remaining": remaining, **reset})

    with serve(Handler, port) as base:
        state.url = base
        yield state


def _conversation_of(state: XApi, tweet_id: str) -> str:
    for tweet in [*state.tweets, *state.ours]:
        if tweet["id"] == tweet_id:
            return str(tweet["conversation_id"])
    return tweet_id


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake X API v2 on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    port = parser.parse_args().port
    with running_x_api(port) as api:
        api.tweet(1, "@acme my card was charged twice!", author="501")
        api.tweet(2, "AcmeBank app keeps logging me out", author="502", mentions_us=False)
        account = {"name": "acme-x", "channel": "x", "credentials": {"bearer_token": TOKEN},
                   "settings": {"user_id": USER_ID, "api_base": api.url, "poll_seconds": "5",
                                "listen_terms": "AcmeBank"}}  # fmt: skip
        offer_until_interrupted("fake X API", api.url, account)


if __name__ == "__main__":
    main()
