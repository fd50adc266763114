"""The generic signed JSON source (any system that can POST a post) and its publisher.

Body: `{"external_id", "author", "text", "url", "received_at"}` (one post) or
`{"posts": [...]}`; header `X-Countersign-Signature: sha256=<hex HMAC-SHA256 of the body>`
under the account's `secret` credential. The account's channel is the posts' channel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors import egress
from connectors.base import Posted, Reply
from connectors.http import raise_for_refusal
from connectors.inbound import InboundPost, Malformed, check_hmac, sign

FIELDS = ("external_id", "author", "text", "url", "received_at")


class SignedJsonInbound:
    def verify(
        self, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str]
    ) -> None:
        check_hmac(credentials.get("secret"), body, headers.get("x-countersign-signature"))

    def parse(self, body: bytes, channel: str, settings: Mapping[str, str]) -> list[InboundPost]:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise Malformed(f"the body is not JSON: {exc}") from exc
        items = data.get("posts") if isinstance(data, dict) and "posts" in data else [data]
        if not isinstance(items, list) or not items:
            raise Malformed('expected a post object or {"posts": [...]} with at least one')
        return [_post(item, n, channel) for n, item in enumerate(items)]


def _post(item: Any, n: int, channel: str) -> InboundPost:
    where = f"posts[{n}]"
    if not isinstance(item, dict):
        raise Malformed(f"{where} is not an object")
    missing = [f for f in FIELDS if not isinstance(item.get(f), str) or not item[f]]
    if missing:
        raise Malformed(f"{where} lacks {', '.join(missing)} (each a non-empty string)")
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise Malformed(f"{where} has unknown fields {unknown}")
    try:
        received = datetime.fromisoformat(item["received_at"].replace("Z", "+00:00"))
    except ValueError as exc:
        raise Malformed(f"{where}.received_at is not an ISO 8601 time") from exc
    if received.tzinfo is None:
        raise Malformed(f"{where}.received_at needs a time zone")
    return InboundPost(
        channel=channel,
        external_id=item["external_id"],
        author=item["author"],
        text=item["text"],
        url=item["url"],
        received_at=received,
    )


class SignedJsonPublisher:
    """Replies to a post that came through the signed JSON source go back to the same
    system: `POST {reply_url}` with `{"key", "in_reply_to", "text"}`, signed like the
    deliveries (`X-Countersign-Signature`) and carrying `Idempotency-Key: key`; the answer
    is `{"id", "url"?}`. A reply is looked up by `GET {reply_url}?key=…` (404: not there),
    and taken down by a signed `DELETE {reply_url}` with `{"id"}`.

    Account settings: `reply_url`, optionally `timeout_seconds`; credential: `secret`."""

    channel = "webhook"

    def __init__(self, account: Any) -> None:
        self.url = account.settings["reply_url"]
        self.secret = account.credentials["secret"]
        self.timeout = float(account.settings.get("timeout_seconds", "10"))

    def post(self, reply: Reply) -> Posted:
        body = json.dumps(
            {"key": reply.key, "in_reply_to": reply.in_reply_to, "text": reply.body},
            separators=(",", ":"),
        ).encode()
        answer = egress.request(
            "POST",
            self.url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": reply.key,
                "X-Countersign-Signature": sign(self.secret, body),
            },
            timeout=self.timeout,
        )
        raise_for_refusal(answer, "the webhook")
        return _posted(answer.json())

    def lookup(self, reply: Reply) -> Posted | None:
        answer = egress.request("GET", self.url, params={"key": reply.key}, timeout=self.timeout)
        if answer.status_code == 404:
            return None
        raise_for_refusal(answer, "the webhook")
        return _posted(answer.json())

    def delete(self, external_id: str) -> None:
        body = json.dumps({"id": external_id}, separators=(",", ":")).encode()
        answer = egress.request(
            "DELETE",
            self.url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Countersign-Signature": sign(self.secret, body),
            },
            timeout=self.timeout,
        )
        if answer.status_code != 404:  # already gone
            raise_for_refusal(answer, "the webhook")


def _posted(data: Any) -> Posted:
    if not isinstance(data, dict) or not data.get("id"):
        raise ValueError("the webhook's answer has no id")  # retried: the outcome is unknown
    return Posted(external_id=str(data["id"]), url=data.get("url"))
