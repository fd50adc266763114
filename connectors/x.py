"""X (API v2): a reply is `POST /2/tweets` with `reply.in_reply_to_tweet_id`; it is looked
up among the account's recent posts (`GET /2/users/{id}/tweets`) by its parent and text,
since X keeps no idempotency key. `DELETE /2/tweets/{id}` takes one down.

Account settings: `user_id`, and optionally `api_base` (default https://api.x.com) and
`timeout_seconds`; credential: `bearer_token` (a user-context OAuth 2.0 token)."""

from __future__ import annotations

from typing import Any

from connectors import egress
from connectors.base import Posted, Reply
from connectors.http import raise_for_refusal


class XPublisher:
    channel = "x"

    def __init__(self, account: Any) -> None:
        self.base = account.settings.get("api_base", "https://api.x.com").rstrip("/")
        self.user_id = account.settings["user_id"]
        self.timeout = float(account.settings.get("timeout_seconds", "10"))
        self.headers = {"Authorization": f"Bearer {account.credentials['bearer_token']}"}

    def post(self, reply: Reply) -> Posted:
        answer = egress.request(
            "POST",
            f"{self.base}/2/tweets",
            json={"text": reply.body, "reply": {"in_reply_to_tweet_id": reply.in_reply_to}},
            headers=self.headers,
            timeout=self.timeout,
        )
        raise_for_refusal(answer, "X")
        return _posted(answer.json()["data"]["id"])

    def lookup(self, reply: Reply) -> Posted | None:
        answer = egress.request(
            "GET",
            f"{self.base}/2/users/{self.user_id}/tweets",
            params={"max_results": 100, "tweet.fields": "referenced_tweets"},
            headers=self.headers,
            timeout=self.timeout,
        )
        raise_for_refusal(answer, "X")
        for tweet in answer.json().get("data", []):
            parents = {
                ref["id"]
                for ref in tweet.get("referenced_tweets", [])
                if ref["type"] == "replied_to"
            }
            if tweet["text"] == reply.body and reply.in_reply_to in parents:
                return _posted(tweet["id"])
        return None

    def delete(self, external_id: str) -> None:
        answer = egress.request(
            "DELETE",
            f"{self.base}/2/tweets/{external_id}",
            headers=self.headers,
            timeout=self.timeout,
        )
        if answer.status_code != 404:  # already gone
            raise_for_refusal(answer, "X")


def _posted(tweet_id: str) -> Posted:
    return Posted(external_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")
