"""Meta Graph publisher: a reply to a Facebook comment is `POST /{comment-id}/comments`, to
an Instagram comment `POST /{comment-id}/replies`, each with `message`. Graph keeps no
idempotency key, so a reply is looked up among the comment's replies by author and text.
`DELETE /{reply-id}` takes one down.

Account (channel `facebook`, source `meta`) settings: `page_id` (the Page, whose replies
the look-up recognises), optionally `ig_user_id`, `graph_base` (default
https://graph.facebook.com/v21.0) and `timeout_seconds`; credential: `page_access_token`.

Graph signals throttling with codes 4, 17, 32 and 613 (often as 400), not always a 429.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from connectors import egress
from connectors.base import Posted, RateLimited, Reply
from connectors.http import raise_for_refusal

THROTTLED = {4, 17, 32, 613}
GONE = 100  # with "Object with ID ... does not exist": deleting it again is done
THROTTLE_WAIT = timedelta(minutes=1)


class MetaGraphPublisher:
    channel = "facebook"

    def __init__(self, account: Any) -> None:
        settings = account.settings
        self.base = settings.get("graph_base", "https://graph.facebook.com/v21.0").rstrip("/")
        self.authors = {settings.get("page_id"), settings.get("ig_user_id")} - {None}
        self.timeout = float(settings.get("timeout_seconds", "10"))
        # Sent as a header, never in a URL, which errors and logs may quote.
        self.headers = {"Authorization": f"Bearer {account.credentials['page_access_token']}"}

    def post(self, reply: Reply) -> Posted:
        answer = egress.request(
            "POST",
            f"{self.base}/{reply.in_reply_to}/{_edge(reply)}",
            data={"message": reply.body},
            headers=self.headers,
            timeout=self.timeout,
        )
        _check(answer)
        return _posted(reply, answer.json()["id"])

    def lookup(self, reply: Reply) -> Posted | None:
        instagram = reply.channel == "instagram"
        answer = egress.request(
            "GET",
            f"{self.base}/{reply.in_reply_to}/{_edge(reply)}",
            params={"fields": "id,text,from" if instagram else "id,message,from"},
            headers=self.headers,
            timeout=self.timeout,
        )
        _check(answer)
        for comment in answer.json().get("data", []):
            text = comment.get("text" if instagram else "message")
            author = (comment.get("from") or {}).get("id")
            if text == reply.body and author in self.authors:
                return _posted(reply, comment["id"])
        return None

    def delete(self, external_id: str) -> None:
        answer = egress.request(
            "DELETE",
            f"{self.base}/{external_id}",
            headers=self.headers,
            timeout=self.timeout,
        )
        if _code(answer) != GONE:
            _check(answer)


def _edge(reply: Reply) -> str:
    return "replies" if reply.channel == "instagram" else "comments"


def _code(answer: httpx.Response) -> int | None:
    """Graph's error code, if the answer is an error."""
    if answer.is_success:
        return None
    try:
        code = answer.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _check(answer: httpx.Response) -> None:
    code = _code(answer)
    if code in THROTTLED:
        raise RateLimited(f"Graph is throttling (code {code})", THROTTLE_WAIT)
    raise_for_refusal(answer, "Meta")


def _posted(reply: Reply, comment_id: str) -> Posted:
    site = "instagram" if reply.channel == "instagram" else "facebook"
    return Posted(external_id=str(comment_id), url=f"https://www.{site}.com/{comment_id}")
