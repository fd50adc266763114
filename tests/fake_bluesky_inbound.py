"""A local fake of a Bluesky PDS's read side for inbound posts, on 127.0.0.1: sessions
(`com.atproto.server.createSession`), `app.bsky.notification.listNotifications` and
`app.bsky.feed.searchPosts` as the AppView answers them (newest first by `indexedAt`, an
opaque `cursor`, `limit`; records with `reply` refs; 429 with `ratelimit-reset`).

Run on its own for `make run` (the README's "Trying the channels"):

    .venv/bin/python -m tests.fake_bluesky_inbound --port 8702

and add a customer's post with `POST /_fake/posts {"text", "author", "reply_to", "reason"}`
(`reply_to`: a post's `at://` URI, ours included; `reason`: mention, reply, quote, or
none for a post only search finds). Our replies (`createRecord`) are kept and answer
`getPosts` and `getRecord`, so the publisher works against it too."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.helpers import JsonHandler, offer_until_interrupted, serve
from tests.test_bluesky import APP_PASSWORD, DID, HANDLE, cid, jwt

POST = "app.bsky.feed.post"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@dataclass
class FakeAppView:
    notifications: list[dict[str, Any]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)  # every post, for search
    limit_after: int | None = None  # answer 429 once after this many more reads
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def post(self, n: int, text: str, *, author: str = "dana", reason: str | None = "mention",
             reply_to: int | str | None = None, root: int | None = None) -> str:  # fmt: skip
        did = f"did:plc:{author:0<24}"
        uri = f"at://{did}/{POST}/3k{n:011d}"
        at = (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
        record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": at, "langs": ["en"]}
        if isinstance(reply_to, str):  # a post's URI (ours, say): its thread's root is kept
            parent_view = next(p for p in self.posts if p["uri"] == reply_to)
            top_uri = parent_view["record"].get("reply", {}).get("root", {}).get("uri", reply_to)
            record["reply"] = {
                "parent": {"uri": reply_to, "cid": parent_view["cid"]},
                "root": {"uri": top_uri, "cid": cid(top_uri)},
            }
        elif reply_to is not None:
            parent = f"at://{did}/{POST}/3k{reply_to:011d}"
            top = f"at://{did}/{POST}/3k{(root or reply_to):011d}"
            record["reply"] = {"parent": {"uri": parent, "cid": cid(parent)},
                               "root": {"uri": top, "cid": cid(top)}}  # fmt: skip
        view = {
            "uri": uri, "cid": cid(record), "record": record, "indexedAt": at,
            "author": {"did": did, "handle": f"{author}.bsky.social",
                       "displayName": author.title()},
        }  # fmt: skip
        self.posts.append(view)
        if reason is not None:
            self.notifications.append({**view, "reason": reason, "isRead": False})
        return uri


def _page(items: list[dict[str, Any]], query: dict[str, str]) -> tuple[list[Any], str | None]:
    ordered = sorted(items, key=lambda i: i["indexedAt"], reverse=True)
    start = int(query.get("cursor", "0"))
    size = int(query.get("limit", "50"))
    more = start + size < len(ordered)
    return ordered[start : start + size], str(start + size) if more else None


@contextmanager
def running_appview(port: int = 0) -> Iterator[FakeAppView]:
    state = FakeAppView()

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            sent = json.loads(self.body() or b"{}")
            if self.path == "/_fake/posts":  # a customer posts (for trying it by hand)
                reason = sent.get("reason", "mention")
                uri = state.post(len(state.posts) + 1, str(sent.get("text", "hello")),
                                 author=str(sent.get("author", "dana")),
                                 reason=None if reason == "none" else reason,
                                 reply_to=sent.get("reply_to"))  # fmt: skip
                self.answer(201, {"uri": uri})
                return
            if urlsplit(self.path).path.endswith("com.atproto.repo.createRecord"):  # our reply
                record = sent["record"]
                uri = f"at://{DID}/{POST}/{sent['rkey']}"
                if all(p["uri"] != uri for p in state.posts):
                    state.posts.append({
                        "uri": uri, "cid": cid(record), "record": record,
                        "indexedAt": record["createdAt"],
                        "author": {"did": DID, "handle": HANDLE, "displayName": "Acme"},
                    })  # fmt: skip
                self.answer(200, {"uri": uri, "cid": cid(record)})
                return
            if urlsplit(self.path).path.endswith("com.atproto.server.createSession"):
                if (sent.get("identifier"), sent.get("password")) != (HANDLE, APP_PASSWORD):
                    self.answer(401, {"error": "AuthenticationRequired", "message": "no"})
                    return
                exp = int(time.time()) + 7200
                self.answer(200, {
                    "did": DID, "handle": HANDLE,
                    "accessJwt": jwt(sub=DID, exp=exp, scope="com.atproto.appPass"),
                    "refreshJwt": jwt(sub=DID, exp=exp + 86400, scope="com.atproto.refresh"),
                })  # fmt: skip
                return
            self.answer(404, {"error": "MethodNotImplemented", "message": self.path})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            method = parts.path.removeprefix("/xrpc/")
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            state.requests.append(self.path)
            if state.limit_after is not None:
                state.limit_after -= 1
                if state.limit_after < 0:
                    state.limit_after = None
                    reset = str(int(time.time()) + 1)
                    self.answer(429, {"error": "RateLimitExceeded", "message": "slow down"},
                                **{"ratelimit-reset": reset})  # fmt: skip
                    return
            if method == "app.bsky.notification.listNotifications":
                items, cursor = _page(state.notifications, query)
                self.answer(200, {"notifications": items, **({"cursor": cursor} if cursor else {})})
            elif method == "app.bsky.feed.getPosts":
                uris = parse_qs(parts.query).get("uris", [])
                self.answer(200, {"posts": [p for p in state.posts if p["uri"] in uris]})
            elif method == "com.atproto.repo.getRecord":
                uri = f"at://{DID}/{query.get('collection')}/{query.get('rkey')}"
                found = [p for p in state.posts if p["uri"] == uri]
                if not found:
                    self.answer(400, {"error": "RecordNotFound", "message": "no such record"})
                    return
                self.answer(200, {"uri": uri, "cid": found[0]["cid"],
                                  "value": found[0]["record"]})  # fmt: skip
            elif method == "app.bsky.feed.searchPosts":
                term = query["q"].casefold()
                found = [p for p in state.posts if term in p["record"]["text"].casefold()]
                items, cursor = _page(found, query)
                self.answer(200, {"posts": items, **({"cursor": cursor} if cursor else {})})
            else:
                self.answer(404, {"error": "MethodNotImplemented", "message": method})

    with serve(Handler, port) as base:
        state.url = base
        yield state


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Bluesky AppView on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    with running_appview(parser.parse_args().port) as fake:
        fake.post(1, "@acme.bsky.social my card is blocked")
        fake.post(2, "AcmeBank ate my deposit", author="sam", reason=None)
        account = {"name": "acme-sky", "channel": "bluesky",
                   "credentials": {"app_password": APP_PASSWORD},
                   "settings": {"handle": HANDLE, "service": fake.url, "poll_seconds": "5",
                                "listen_terms": "AcmeBank"}}  # fmt: skip
        offer_until_interrupted("fake Bluesky", fake.url, account)


if __name__ == "__main__":
    main()
