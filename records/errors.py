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
    status_code = 503
    title = "Service unavailable"
