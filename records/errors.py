"""Errors that carry their own HTTP status; one handler in the API renders them."""

from __future__ import annotations

from typing import Any


class CountersignError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """Headers the answer carries beside the problem (none, but for a 503's wait)."""
        return {}


class Unauthenticated(CountersignError):
    status_code = 401
    title = "Unauthorized"


class NotFound(CountersignError):
    status_code = 404
    title = "Not found"


class Conflict(CountersignError):
    status_code = 409
    title = "Conflict"


class Forbidden(CountersignError):
    status_code = 403
    title = "Forbidden"


class Invalid(CountersignError):
    status_code = 422
    title = "Unprocessable entity"


class Unavailable(CountersignError):
    """Something the service needs (Temporal, the database) is out of reach for now: the
    caller is told when to try again, as load balancers and clients expect of a 503."""

    status_code = 503
    title = "Service unavailable"
    retry_after = 5  # seconds: about what a restart or a failover takes

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UpstreamRefused(CountersignError):
    """A service we depend on refused what we asked in a way a retry cannot mend (Temporal
    answering "permission denied" to a misconfigured key): no Retry-After, it is ours to fix."""

    status_code = 502
    title = "Bad gateway"
