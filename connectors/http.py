"""What a platform's HTTP answer means for a publisher: done, wait (429), refused (other
4xx: asking again cannot help), or unknown (5xx: retried, after a look-up)."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import httpx

from connectors.base import PublishRefused, RateLimited, remote_reason

DEFAULT_WAIT = timedelta(seconds=30)


def raise_for_refusal(answer: httpx.Response, platform: str) -> None:
    if answer.is_success:
        return
    if answer.status_code == 429:
        raise RateLimited(f"{platform} answered 429", retry_after(answer))
    if 400 <= answer.status_code < 500:
        raise PublishRefused(
            f"{platform} refused the reply: {answer.status_code} {_reason(answer)}"
        )
    # 5xx (or anything else): the outcome is unknown; retried after a look-up. Our own
    # words, not httpx's, which quote the URL (and whatever a URL may carry).
    raise RemoteFailure(f"{platform} answered {answer.status_code} {_reason(answer)}")


class RemoteFailure(RuntimeError):
    """The platform failed (5xx): retried, after a look-up."""


def retry_after(answer: httpx.Response) -> timedelta:
    """`Retry-After` (seconds or an HTTP date), else X's `x-rate-limit-reset` (epoch)."""
    value = answer.headers.get("retry-after")
    if value:
        if value.strip().isdigit():
            return timedelta(seconds=int(value))
        when = email.utils.parsedate_to_datetime(value)
        return max(when - datetime.now(UTC), timedelta(0))
    reset = answer.headers.get("x-rate-limit-reset")
    if reset and reset.strip().isdigit():
        return max(datetime.fromtimestamp(int(reset), UTC) - datetime.now(UTC), timedelta(0))
    return DEFAULT_WAIT


def _reason(answer: httpx.Response) -> str:
    """The answer's own short reason (`connectors.base.remote_reason`), if it gives one."""
    return remote_reason(_stated(answer))


def _stated(answer: httpx.Response) -> str:
    try:
        data = answer.json()
    except ValueError:
        return answer.reason_phrase
    if isinstance(data, dict):
        nested = data.get("error")
        if isinstance(nested, dict):  # Meta Graph: {"error": {"message", "code", ...}}
            data = nested
        for key in ("detail", "title", "error", "message"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return answer.reason_phrase
