"""Meta webhooks: Facebook Page feed comments and Instagram comments.

- Verification handshake: `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
  answers the challenge when the token is the account's `verify_token` credential.
- Deliveries are signed `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>` with the app secret
  (`app_secret` credential).
- `object: page` with `changes[].field == "feed"` and `value.item == "comment"`,
  `value.verb == "add"` is a Facebook comment; `object: instagram` with
  `changes[].field == "comments"` an Instagram one. Other changes (edits, likes, removals)
  carry no new post and are acknowledged without one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.inbound import BadSignature, InboundPost, Malformed, check_hmac


class MetaInbound:
    def handshake(self, params: Mapping[str, str], credentials: Mapping[str, str]) -> str:
        """The challenge to answer, or `BadSignature` when the request is not Meta's."""
        token = credentials.get("verify_token")
        if params.get("hub.mode") != "subscribe" or not token:
            raise BadSignature("not a subscription handshake for this account")
        if params.get("hub.verify_token") != token:
            raise BadSignature("the verify token does not match")
        challenge = params.get("hub.challenge")
        if not challenge:
            raise Malformed("hub.challenge is missing")
        return challenge

    def verify(
        self, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str]
    ) -> None:
        check_hmac(credentials.get("app_secret"), body, headers.get("x-hub-signature-256"))

    def parse(self, body: bytes, channel: str, settings: Mapping[str, str]) -> list[InboundPost]:
        try:
            data = json.loads(body)
            kind, entries = data["object"], data["entry"]
        except (ValueError, KeyError, TypeError) as exc:
            raise Malformed('expected Meta\'s {"object", "entry": [...]} shape') from exc
        if kind not in ("page", "instagram") or not isinstance(entries, list):
            raise Malformed(f"object {kind!r} is not page or instagram")
        posts = []
        for n, entry in enumerate(entries):
            try:
                for change in entry.get("changes", []):
                    post = _facebook(change, entry) if kind == "page" else _instagram(change, entry)
                    if post is not None:
                        posts.append(post)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise Malformed(f"entry[{n}] is not a {kind} change Meta sends: {exc!r}") from exc
        return posts


def _when(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def _facebook(change: dict[str, Any], entry: dict[str, Any]) -> InboundPost | None:
    value = change["value"]
    if (
        change.get("field") != "feed"
        or value.get("item") != "comment"
        or value.get("verb") != "add"
    ):
        return None
    comment_id = str(value["comment_id"])
    return InboundPost(
        channel="facebook",
        external_id=comment_id,
        author=str(value["from"].get("name") or value["from"]["id"]),
        text=str(value["message"]),
        url=f"https://www.facebook.com/{comment_id}",
        received_at=_when(value.get("created_time", entry["time"])),
    )


def _instagram(change: dict[str, Any], entry: dict[str, Any]) -> InboundPost | None:
    if change.get("field") != "comments":
        return None
    value = change["value"]
    media = value.get("media", {}).get("id", "")
    return InboundPost(
        channel="instagram",
        external_id=str(value["id"]),
        author="@" + str(value["from"]["username"]),
        text=str(value["text"]),
        url=f"https://www.instagram.com/p/{media}/" if media else "https://www.instagram.com/",
        received_at=_when(entry["time"]),
    )
