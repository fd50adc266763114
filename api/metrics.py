"""Prometheus metrics, one registry per app so that tests can build many apps: the HTTP
requests, the actions on drafts and their refusals by kind (counted as they happen), the
process's own (CPU, memory, open files), and the product's figures read from the record
when scraped (`records.gauges`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import Scope

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

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered (`api.request_log`)."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

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
        for name, documentation, labels, values in FIGURES:
            yield _gauge(name, documentation, labels, values(figures))


# The product's gauges: name, help, labels, and each sample's labels' values and figure.
FIGURES: tuple[tuple[str, str, list[str], Callable[[gauges.Figures], Mapping[Any, float]]], ...] = (
    ("countersign_drafts", "Drafts by status", ["status"],
     lambda f: {(status,): n for status, n in f.drafts.items()}),
    ("countersign_drafts_sla_breached", "Drafts whose review stage is past its time", [],
     lambda f: {(): f.sla_breached}),
    ("countersign_queue_waiting", "Posts waiting for a reply, by queue", ["queue"],
     lambda f: {(queue,): n for queue, n in f.waiting.items()}),
    ("countersign_queue_oldest_wait_seconds", "The longest a waiting post has waited", ["queue"],
     lambda f: {(queue,): s for queue, s in f.oldest_wait_seconds.items()}),
    ("countersign_posts_received_last_hour", "Posts received in the last hour (ingest)", [],
     lambda f: {(): f.received_last_hour}),
    ("countersign_publications", "Publications by channel and outcome", ["channel", "status"],
     lambda f: f.publications),
)  # fmt: skip


def _gauge(
    name: str, documentation: str, labels: list[str], values: Mapping[Any, float]
) -> GaugeMetricFamily:
    """A gauge family with a sample per labels' values, in their order."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def route_template(scope: Scope) -> str:
    """The matched route's template, never the raw path: ids would explode the label set.

    FastAPI >= 0.160 includes routers lazily and keeps the full template (with the router
    prefix) in its effective route context; older versions put the full route in `route`.
    """
    effective = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(effective, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template or "unmatched"
