"""Traces (issue 25, item 3): one slow approval followed from the browser to the channel.

With `COUNTERSIGN_OTLP_ENDPOINT` naming an OpenTelemetry collector (its OTLP/HTTP base,
e.g. `http://otel-collector:4318`), the API and the worker each send their spans there, and
one decision is one trace:

    POST /api/v1/drafts/{draft_id}/decisions          (the API: FastAPI's instrumentation)
      SELECT / INSERT ...                             (its statements: SQLAlchemy's)
      StartWorkflowUpdate:decide                      (temporalio's interceptor, in the API)
        ValidateUpdate:decide, HandleUpdate:decide    (the worker, from the update's headers)
          StartActivity:record_decision
            RunActivity:record_decision               (the activity)
              INSERT INTO audit_events ...            (its statements)
      ...
            RunActivity:publish_reply
              publish x                               (`publishing`: the channel call)
                POST                                  (httpx's instrumentation)

The context crosses from the API to the worker in the Temporal update's headers, so the
trace holds together however many API and worker processes there are. It crosses nothing
else: the process neither continues a trace its caller names (`traceparent`, `baggage`:
anyone could choose our trace ids, force sampling or have us carry their baggage) nor
sends one to a platform, a webhook or a CRM. Every span leaves through
`countersign.span_privacy`, which keeps personal data out of it. Without the setting
nothing is instrumented and nothing is paid. Tests pass an exporter of their own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator, default_getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext

from countersign.span_privacy import Scrubbing

if TYPE_CHECKING:
    from fastapi import FastAPI
    from temporalio.contrib.opentelemetry import (
        OpenTelemetryInterceptor,
        ReplaySafeTracerProvider,
    )

    from records.db import Database
    from records.settings import Settings

TRACER = "countersign"
# Probes and scrapes every few seconds would bury the requests people make. Matched
# against the whole URL, so anchored: `?x=metrics` on another route is still traced.
UNTRACED_ROUTES = r"^[a-z]+://[^/]+(/api/v1)?/(healthz|readyz|metrics)/?(\?|$)"


@dataclass(frozen=True)
class Tracing:
    """One process's tracer provider and the instrumentations that feed it."""

    provider: TracerProvider | ReplaySafeTracerProvider

    def temporal(self) -> OpenTelemetryInterceptor:
        """For `Client.connect(interceptors=...)`: the current span's context goes with
        every start, update and activity in Temporal's headers, and (on the worker, which
        takes its client's interceptors) each workflow, update handler and activity runs
        under the context its own caller sent. temporalio's newer interceptor, because the
        older one parents every update on the workflow's start, which would put each
        decision in the trace of the draft's creation."""
        from temporalio.contrib.opentelemetry import OpenTelemetryInterceptor

        return OpenTelemetryInterceptor(add_temporal_spans=True)

    def app(self, app: FastAPI) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            excluded_urls=UNTRACED_ROUTES,
            exclude_spans=["receive", "send"],  # one span a request, not one a message
        )

    def database(self, database: Database) -> None:
        """A span for each statement on the database's engines (its text with placeholders,
        never the values). Through the instrumentation's engine tracer rather than its
        instrumentor, which refuses SQLAlchemy 2.1 (its supported range lags) and
        instruments once per process, where a test process holds several engines."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider

        usage = NoOpMeterProvider().get_meter(TRACER).create_up_down_counter("db.connections")
        tracer = self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
        for engine in database.engines:
            # Before the tracer's own, which would end the span as an error: SQLAlchemy
            # calls them in the order they were given (`insert` does not put one first).
            event.listen(engine, "handle_error", _moved_not_failed)
            EngineTracer(tracer, engine, usage)

    def shutdown(self) -> None:
        """Send what is buffered, then stop (a process about to exit)."""
        self.provider.shutdown()


MOVED_TO_THREAD = "countersign.read.moved_to_thread"


def _moved_not_failed(context: ExceptionContext) -> None:
    """A read stopped on the event loop to run again on a thread (`records.db.Database.read`)
    did not fail: its statement's span (the instrumentation's, kept on the execution
    context) ends as moved, not as an error, and is taken from the tracer, which would
    otherwise end it again when it was stopped while its rows were read."""
    from records.db import INLINE

    stopped = (
        isinstance(context.original_exception, sqlite3.OperationalError)
        and str(context.original_exception) == "interrupted"
    )
    if not stopped or context.connection is None or not context.connection.info.get(INLINE):
        return
    span = getattr(context.execution_context, "_otel_span", None)
    if span is None:
        return
    if span.is_recording():
        span.set_attribute(MOVED_TO_THREAD, True)
        span.end()
    context.execution_context._otel_span = None  # type: ignore[union-attr]


def start(settings: Settings, service: str, exporter: SpanExporter | None = None) -> Tracing | None:
    """The process's tracing, or None when no collector is named and no exporter given.

    With a collector, the provider becomes the process's global one, so spans opened with
    `span()` (the channel call) and httpx's outbound requests land in it. A test passes its
    own `exporter`, sent every span as it ends, and leaves the process's globals alone (a
    test process holds an API and a worker, each with a provider of its own)."""
    if exporter is None and not settings.otlp_endpoint:
        return None
    resource = Resource.create(
        {"service.name": f"countersign-{service}", "service.namespace": "countersign"}
    )
    sampler = ParentBased(TraceIdRatioBased(settings.trace_sample_ratio))
    if exporter is not None:
        provider = TracerProvider(resource=resource, sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(Scrubbing(exporter)))
        return Tracing(provider)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from temporalio.contrib.opentelemetry import create_tracer_provider

    # Replay-safe (temporalio's): a workflow replayed on another worker makes no spans a
    # second time, and the ids of those it makes do not depend on which worker ran it.
    replay_safe = create_tracer_provider(sampler=sampler, resource=resource)
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    otlp = Scrubbing(OTLPSpanExporter(endpoint=endpoint))
    replay_safe.add_span_processor(BatchSpanProcessor(otlp))
    trace.set_tracer_provider(replay_safe)
    propagate.set_global_textmap(_Sealed())  # see the module's docstring
    HTTPXClientInstrumentor().instrument(tracer_provider=replay_safe)
    return Tracing(replay_safe)


class _Sealed(TextMapPropagator):
    """The edge of the service's traces: takes no context from a request (a new trace
    starts) and gives none to an outgoing one. (An empty composite would answer no context
    at all, which the ASGI instrumentation attaches as the current one, failing every
    request.)"""

    def extract(
        self, carrier: Any, context: Context | None = None, getter: Any = default_getter
    ) -> Context:
        return context if context is not None else Context()

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return set()


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """A span of the product's own (the channel call) under whatever span is current; a
    no-op when the process has no tracing."""
    with trace.get_tracer(TRACER).start_as_current_span(name, attributes=attributes):
        yield


@contextmanager
def untraced() -> Iterator[None]:
    """No spans for what runs inside (a probe's or a scrape's statements, which would
    otherwise start a trace of their own every few seconds)."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield


def trace_id() -> str | None:
    """The current trace's id as collectors show it (32 hex digits), for the log lines."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
