"""The generic signed JSON source: any system that can POST a post.

Body: `{"external_id", "author", "text", "url", "received_at"}` (one post) or
`{"posts": [...]}`; header `X-Countersign-Signature: sha256=<hex HMAC-SHA256 of the body>`
under the account's `secret` credential. The account's channel is the posts' channel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.inbound import InboundPost, Malformed, check_hmac

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
