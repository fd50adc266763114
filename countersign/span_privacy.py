"""What a span may carry when it leaves the process (issue 25, item 3): the same rule as the
log lines (`countersign.logs`), applied to every span before the exporter sends it.

The instrumentations record more than the service may hand a collector:
- URLs with their query strings (`http.url`, `url.full`, `http.target`, `url.query`): a
  page's notice (`?notice=jane.doe can now sign in`), a search for a customer, a webhook
  URL's token. Kept: the scheme, host and path; the query and any user or password go.
- the caller's address and user agent: dropped;
- an exception's text, in the span's status and its `exception` event (a unique violation's
  `Key (username)=(…)`, a platform's refusal quoting the reply): only its type is kept,
  as a log line keeps it.

Statements are recorded with their placeholders, never their values, so they stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

URLS = ("http.url", "url.full", "http.target", "url.path")
DROPPED = frozenset({
    "url.query", "http.user_agent", "user_agent.original", "net.peer.ip", "net.peer.port",
    "client.address", "client.port", "http.client_ip", "net.sock.peer.addr",
    "net.sock.peer.port", "network.peer.address", "network.peer.port",
})  # fmt: skip
EXCEPTION_TYPE = "exception.type"


def without_query(url: str) -> str:
    """`url` without its query, fragment, user and password (a bare path stays a path)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrubbed(span: ReadableSpan) -> ReadableSpan:
    attributes = {}
    for key, value in (span.attributes or {}).items():
        if key in DROPPED:
            continue
        attributes[key] = without_query(value) if key in URLS and isinstance(value, str) else value
    events = [
        Event(event.name, {EXCEPTION_TYPE: (event.attributes or {}).get(EXCEPTION_TYPE, "")},
              timestamp=event.timestamp)
        if event.name == "exception"
        else event
        for event in span.events
    ]  # fmt: skip
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),  # the code; the text may quote the data
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class Scrubbing(SpanExporter):
    """An exporter that sends each span as `scrubbed` makes it."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
