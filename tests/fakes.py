"""Local fakes of social platforms shared by several test modules (each module keeps the
fakes only it uses): they answer on 127.0.0.1 as the platform does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from records.account_models import ChannelAccountCreate
from records.fields import Channel
from tests.helpers import JsonHandler, serve

TOKEN = "x-user-token-for-tests"


@dataclass
class FakeX:
    """Tweets posted, and what to do with each coming POST ("ok", "hang": store it, then
    answer too late, "stall": store it and answer after 30 s, "slow": after 3.5 s, "429" (wait 2 s),
    "429-a-year", "503", "401")."""

    script: list[str] = field(default_factory=list)
    tweets: list[dict[str, Any]] = field(default_factory=list)
    post_times: list[float] = field(default_factory=list)
    url: str = ""


@contextmanager
def running_fake_x() -> Iterator[FakeX]:
    state = FakeX()

    class Handler(JsonHandler):
        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            self.answer(401, {"title": "Unauthorized", "detail": "Unauthorized", "status": 401})
            return False

        def do_POST(self) -> None:
            sent = json.loads(self.body())
            state.post_times.append(time.monotonic())
            step = state.script.pop(0) if state.script else "ok"
            if step == "429":
                self.answer(429, {"title": "Too Many Requests"}, **{"Retry-After": "2"})
                return
            if step == "429-a-year":
                self.answer(429, {"title": "Too Many Requests"}, **{"Retry-After": "31536000"})
                return
            if step == "503":
                self.answer(503, {"title": "Service Unavailable"})
                return
            if step == "401" or not self._authorised():
                if step == "401":
                    self.answer(401, {"title": "Unauthorized", "detail": "Unauthorized"})
                return
            tweet = {
                "id": str(1862000000000000000 + len(state.tweets)),
                "text": sent["text"],
                "referenced_tweets": [
                    {"type": "replied_to", "id": sent["reply"]["in_reply_to_tweet_id"]}
                ],
            }
            state.tweets.append(tweet)
            if step in ("hang", "stall", "slow"):
                # The client gave up after 1 s (hang), or dies meanwhile (stall): it cannot
                # know this worked. Or it waits (slow).
                time.sleep({"hang": 2.5, "stall": 30, "slow": 3.5}[step])
            self.answer(201, {"data": {"id": tweet["id"], "text": tweet["text"]}})

        def do_GET(self) -> None:
            if self._authorised():
                self.answer(200, {"data": list(reversed(state.tweets))})

        def do_DELETE(self) -> None:
            tweet_id = self.path.rsplit("/", 1)[1]
            kept = [t for t in state.tweets if t["id"] != tweet_id]
            if not self._authorised():
                return
            if len(kept) == len(state.tweets):
                self.answer(404, {"title": "Not Found Error", "detail": "Could not find tweet"})
                return
            state.tweets[:] = kept
            self.answer(200, {"data": {"deleted": True}})

    with serve(Handler) as base:
        state.url = base
        yield state


def x_account(fake: FakeX, timeout_seconds: float) -> ChannelAccountCreate:
    """An X channel account that posts to `fake`, waiting `timeout_seconds` for answers."""
    return ChannelAccountCreate(
        name="acme-x",
        channel=Channel.x,
        settings={"user_id": "42", "api_base": fake.url, "timeout_seconds": str(timeout_seconds)},
        credentials={"bearer_token": TOKEN},
    )
