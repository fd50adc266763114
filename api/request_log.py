"""What every request leaves behind (issue 25, item 4): its id, its line in the access log,
and its count and latency in the metrics (`api.metrics`), all from one look at its answer.

A request keeps the id its caller sent in `X-Request-ID` (a load balancer's, a client's
retry) when it is a plain token, else gets a new one; the answer says which, and every line
logged while it runs carries it (`countersign.logs`). When it ends, one line says what was
asked and how it went: the method, the route's template (never the raw path, whose ids and
query may name a customer), the status and the time taken, with the person and the draft
where the request named them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import Metrics, route_template
from countersign import logs

log = logging.getLogger("countersign.access")
HEADER = b"x-request-id"
VALID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class RequestLog:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(HEADER, b"")
        request_id = given.decode() if VALID.fullmatch(given) else uuid.uuid4().hex
        logs.REQUEST_ID.set(request_id)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route, seconds = route_template(scope), time.perf_counter() - started
            self.metrics.observe(scope["method"], route, status, seconds)
            log.info(
                "%s %s %s", scope["method"], route, status,
                extra={"method": scope["method"], "route": route, "status": status,
                       "duration_ms": round(seconds * 1000, 1)},
            )  # fmt: skip
