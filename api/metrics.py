"""Prometheus metrics, one registry per app so that tests can build many apps: the HTTP
requests, the actions on drafts and their refusals by kind (counted as they happen), the
process's own (CPU, memory, open files), and the product's figures read from the record
when scraped (`records.gauges`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from records import gauges


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "countersign_http_requests",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "countersign_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.actions = Counter(
            "countersign_actions",
            "Actions on drafts by action and outcome (done, or the kind of refusal)",
            ["action", "outcome"],
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.figures = FiguresCollector()
        self.registry.register(self.figures)

    def read_figures_with(self, read: Callable[[], gauges.Figures]) -> None:
        """Report the product's figures, read by `read` at each scrape (once the app has
        its database)."""
        self.figures.read = read


class FiguresCollector:
    """`records.gauges` as Prometheus gauges, read when scraped, at most once every
    `FRESH_SECONDS`: `/metrics` is open, and a client asking for it in a loop must not
    make the database count the record in a loop."""

    FRESH_SECONDS = 10.0

    def __init__(self) -> None:
        self.read: Callable[[], gauges.Figures] | None = None
        self._lock = threading.Lock()
        self._last: tuple[float, gauges.Figures] | None = None

    def describe(self) -> list[Metric]:
        return []  # read only when scraped, never on registration

    def fresh(self) -> gauges.Figures | None:
        if self.read is None:
            return None
        with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= self.FRESH_SECONDS:
                self._last = (now, self.read())
            return self._last[1]

    def collect(self) -> Iterator[Metric]:
        figures = self.fresh()
        if figures is None:
            return
        drafts = GaugeMetricFamily("countersign_drafts", "Drafts by status", labels=["status"])
        for status, n in sorted(figures.drafts.items()):
            drafts.add_metric([status], n)
        yield drafts
        yield GaugeMetricFamily(
            "countersign_drafts_sla_breached", "Drafts whose review stage is past its time",
            value=figures.sla_breached,
        )  # fmt: skip
        waiting = GaugeMetricFamily(
            "countersign_queue_waiting", "Posts waiting for a reply, by queue", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "countersign_queue_oldest_wait_seconds", "The longest a waiting post has waited",
            labels=["queue"],
        )  # fmt: skip
        for queue, n in sorted(figures.waiting.items()):
            waiting.add_metric([queue], n)
            oldest.add_metric([queue], figures.oldest_wait_seconds[queue])
        yield waiting
        yield oldest
        yield GaugeMetricFamily(
            "countersign_posts_received_last_hour", "Posts received in the last hour (ingest)",
            value=figures.received_last_hour,
        )  # fmt: skip
        published = GaugeMetricFamily(
            "countersign_publications", "Publications by channel and outcome",
            labels=["channel", "status"],
        )  # fmt: skip
        for (channel, status), n in sorted(figures.publications.items()):
            published.add_metric([channel, status], n)
        yield published


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = scope["method"]
            template = route_template(scope)
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route's template, never the raw path: ids would explode the label set.

    FastAPI >= 0.160 includes routers lazily and keeps the full template (with the router
    prefix) in its effective route context; older versions put the full route in `route`.
    """
    effective = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(effective, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template or "unmatched"
