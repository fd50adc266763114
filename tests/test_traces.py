"""Traces (issue 25, item 3): one decision is one trace, from the HTTP request through the
workflow update, the activities and their statements to the channel call, across the API's
process and the worker's.

The API runs here with the SDK's in-memory exporter; the worker is the real `countersign
worker` in a process of its own, sending its spans by OTLP to a local collector
(`tests/fake_otlp.py`) because `COUNTERSIGN_OTLP_ENDPOINT` names it. The two halves of a
trace meet only through what the update and the activities carried in Temporal's headers.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from countersign import logs, tracing
from lifecycle.words import Role
from records import channels
from records.db import Database
from records.settings import Settings
from tests.conftest import LOOPBACK
from tests.fake_otlp import Collector, Span, running_collector
from tests.fakes import FakeX, running_fake_x, x_account
from tests.helpers import (
    free_ports,
    insert_post,
    new_post,
    own_secrets,
    signed_in,
    submitted_draft,
)
from workflows.connection import TemporalGateway

pytestmark = pytest.mark.temporal
# Personal data that must never reach a collector, unique to the run (so that no port or
# id in a span can match it by chance).
ORDER = f"order-{uuid.uuid4().hex[:12]}"
REPLY = f"Thanks Ana Souza, we have sent you a direct message about {ORDER}."


@pytest.fixture
def collector() -> Iterator[Collector]:
    with running_collector() as state:
        yield state


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with running_fake_x() as state:
        yield state


def own(settings: Settings) -> Settings:
    """The test's settings with the secrets a `countersign worker` process is given."""
    return settings.model_copy(
        update={name.removeprefix("COUNTERSIGN_").lower(): v for name, v in own_secrets().items()}
    )


def start_process(
    kind: str, env: dict[str, str], probe: str, log: Path, deadline_seconds: float = 60
) -> subprocess.Popen[str]:
    """`countersign api` or `worker`, once `probe` answers 200."""
    with log.open("w") as out:  # a file: a pipe nobody reads would stall the process
        process = subprocess.Popen(
            [sys.executable, "-m", "countersign.cli", kind], env=env, text=True,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(probe, timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"`countersign {kind}` did not become ready:\n{log.read_text()}")


def start_worker(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[str]:
    return start_process("worker", env, f"http://127.0.0.1:{port}/readyz", log)


def chain(span_id: str | None, by_id: dict[str, Span | ReadableSpan]) -> list[str]:
    """The names from a span up to the first one this side does not hold."""
    names = []
    while span_id is not None and span_id in by_id:
        span = by_id[span_id]
        if isinstance(span, Span):
            names.append(span.name)
            span_id = span.parent_id
        else:
            names.append(span.name)
            span_id = f"{span.parent.span_id:016x}" if span.parent else None
    return names


def api_spans(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {f"{s.context.span_id:016x}": s for s in exporter.get_finished_spans()}


def trace_of(span: ReadableSpan) -> str:
    return f"{span.context.trace_id:032x}"


@pytest.mark.long(10)
async def test_one_decision_is_one_trace_across_the_api_and_the_worker(
    settings: Settings,
    database: Database,
    database_url: str,
    temporal_env: WorkflowEnvironment,
    make_user: Any,
    collector: Collector,
    fake_x: FakeX,
    tmp_path: Path,
) -> None:
    queue = f"traces-{uuid.uuid4().hex[:8]}"
    live = own(settings).model_copy(update={"task_queue": queue, "workflow_id_prefix": f"{queue}-"})
    memory = InMemorySpanExporter()
    traces = tracing.start(live, "api", exporter=memory)
    assert traces is not None
    target = temporal_env.client.service_client.config.target_host
    gateway = TemporalGateway(target, "default", interceptors=[traces.temporal()])
    [health] = free_ports(1)
    worker_env = {
        **os.environ, **own_secrets(),
        "COUNTERSIGN_DATABASE_URL": database_url,
        "COUNTERSIGN_TEMPORAL_ADDRESS": target,
        "COUNTERSIGN_TASK_QUEUE": queue,
        "COUNTERSIGN_WORKFLOW_ID_PREFIX": f"{queue}-",
        "COUNTERSIGN_AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "COUNTERSIGN_OUTBOUND_ALLOW": json.dumps(LOOPBACK),
        "COUNTERSIGN_WORKER_HEALTH_PORT": str(health),
        "COUNTERSIGN_LOG_FORMAT": "json",
        "COUNTERSIGN_OTLP_ENDPOINT": collector.url,
    }  # fmt: skip
    for name, role in (("agent", Role.agent), ("comms", Role.comms), ("pub", Role.publisher)):
        make_user(name, role)
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logs.JsonFormatter())
    access_log = logging.getLogger("countersign.access")
    level = access_log.level
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    worker_log = tmp_path / "worker.log"
    worker = await asyncio.to_thread(start_worker, worker_env, health, worker_log)
    # A database of its own: the spans' listeners stay on its engines, not the shared one's.
    own_database = Database(database_url)
    app = create_app(live, database=own_database, temporal=gateway, traces=traces)
    try:
        async with app.router.lifespan_context(app):
            with database.write() as connection:  # the vault holds the test's secrets key now
                account_id = channels.create(connection, x_account(fake_x, 30), actor="admin").id
                post_id = insert_post(connection, account_id=account_id)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                people = await signed_in(client, "agent", "comms", "pub")
                url = await submitted_draft(client, people, post_id, body=REPLY)
                approve = {"stage": "comms", "decision": "approve", "version": 1}
                decided = await client.post(  # a query naming the customer, ignored
                    f"{url}/decisions?customer={ORDER}", headers=people["comms"], json=approve
                )
                assert decided.json()["status"] == "approved", decided.text
                published = await client.post(f"{url}/publish", headers=people["pub"])
                assert published.json()["status"] == "published", published.text
    finally:
        access_log.removeHandler(handler)
        access_log.setLevel(level)
        own_database.dispose()
        worker.send_signal(signal.SIGTERM)  # the worker sends what it holds, then stops
        await asyncio.to_thread(worker.wait, timeout=60)
    output = worker_log.read_text()
    assert worker.returncode == 0, output
    assert len(fake_x.tweets) == 1

    ours = api_spans(memory)
    theirs = {s.span_id: s for s in collector.received()}
    assert {s.service for s in theirs.values()} == {"countersign-worker"}
    for route, activity in (("decisions", "record_decision"), ("publish", "publish_reply")):
        [request] = [
            s for s in ours.values() if s.name == f"POST /api/v1/drafts/{{draft_id}}/{route}"
        ]
        trace_id = trace_of(request)
        # The API's half: the request and its statements.
        here = [s for s in ours.values() if trace_of(s) == trace_id]
        assert any((s.attributes or {}).get("db.system") for s in here), route
        # The worker's half, under the same trace: the update, the activity, its statements.
        there = [s for s in theirs.values() if s.trace_id == trace_id]
        run = [s for s in there if s.name == f"RunActivity:{activity}"][-1]  # the last try
        assert any(s.parent_id == run.span_id and s.attributes.get("db.system") for s in there)
        # Walking up from the activity on the worker's side passes the update's handler
        # and ends at the request the API served.
        up = chain(run.span_id, theirs)  # type: ignore[arg-type]
        assert any(name.startswith("HandleUpdate:") for name in up), (route, up)
        top = next(s for s in there if s.name == up[-1])
        assert top.parent_id in ours, (route, up)
        assert chain(top.parent_id, ours)[-1] == request.name  # type: ignore[arg-type]
        if route == "publish":
            # The channel call, and the HTTP request to the platform under it.
            [call] = [s for s in there if s.name == "publish x" and s.parent_id == run.span_id]
            [http] = [s for s in there if s.parent_id == call.span_id]
            assert str(http.attributes.get("url.full", http.attributes.get("http.url")))
            assert fake_x.url in str(
                http.attributes.get("url.full") or http.attributes.get("http.url")
            )
            published_line = next(
                json.loads(line) for line in output.splitlines()
                if line.startswith("{") and json.loads(line)["message"] == "reply published on x"
            )  # fmt: skip
            assert published_line["trace_id"] == trace_id
            assert published_line["actor"] == "pub"
            assert published_line["draft_id"] == int(url.rsplit("/", 1)[1])
        # The API's access line for the request carries the trace's id.
        access = [json.loads(line) for line in lines.getvalue().splitlines()]
        assert any(a.get("trace_id") == trace_id and a["route"].endswith(route) for a in access), (
            route
        )

    # No span holds the reply's words or the customer's name, not even the query that
    # named her (`countersign.span_privacy`); statements carry placeholders only.
    every = [json.dumps(s.attributes) for s in theirs.values()]
    for span in ours.values():
        every.append(json.dumps(dict(span.attributes or {})))
        every.append(json.dumps([dict(e.attributes or {}) for e in span.events]))
        every.append(str(span.status.description))
    assert not any("Ana Souza" in text or ORDER in text for text in every)
    assert any("decisions" in text for text in every)  # the routes are there, by template


def test_a_span_leaves_without_a_query_an_address_or_an_exception_s_text() -> None:
    """What the instrumentations record and the collector must not see: a page's notice in
    the query, the caller's address, a unique violation quoting a username."""
    memory = InMemorySpanExporter()
    traces = tracing.start(Settings(), "api", exporter=memory)
    assert traces is not None
    tracer = traces.provider.get_tracer("test")
    with tracer.start_as_current_span("GET /admin/users") as span:
        span.set_attribute("http.url", "https://cs.example/admin/users?notice=jane.doe+is+in")
        span.set_attribute("http.target", "/admin/users?notice=jane.doe+is+in")
        span.set_attribute("url.query", "notice=jane.doe+is+in")
        span.set_attribute("net.peer.ip", "203.0.113.9")
        span.set_attribute("http.route", "/admin/users")
        try:
            raise ValueError("Key (username)=(jane.doe) already exists")
        except ValueError as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
    [sent] = memory.get_finished_spans()
    assert dict(sent.attributes or {}) == {
        "http.url": "https://cs.example/admin/users",
        "http.target": "/admin/users",
        "http.route": "/admin/users",
    }
    assert [dict(e.attributes or {}) for e in sent.events] == [{"exception.type": "ValueError"}]
    assert sent.status.status_code == trace.StatusCode.ERROR
    assert not sent.status.description


@pytest.mark.long
async def test_the_api_process_sends_its_half_by_otlp_and_continues_no_caller_s_trace(
    database_url: str,
    temporal_env: WorkflowEnvironment,
    make_user: Any,
    collector: Collector,
    tmp_path: Path,
) -> None:
    """Both halves as production runs them: `countersign api` and `countersign worker`
    processes, each sending its spans by OTLP. The API records the update it sends
    (`StartWorkflowUpdate:decide`), the worker's spans hang under it, and a caller's
    `traceparent` is not continued: the trace is the service's own."""
    queue = f"traces-{uuid.uuid4().hex[:8]}"
    health, port = free_ports(2)
    env = {
        **os.environ, **own_secrets(),
        "COUNTERSIGN_DATABASE_URL": database_url,
        "COUNTERSIGN_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "COUNTERSIGN_TASK_QUEUE": queue,
        "COUNTERSIGN_WORKFLOW_ID_PREFIX": f"{queue}-",
        "COUNTERSIGN_AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "COUNTERSIGN_WORKER_HEALTH_PORT": str(health),
        "COUNTERSIGN_API_PORT": str(port),
        "COUNTERSIGN_OTLP_ENDPOINT": collector.url,
        "COUNTERSIGN_POST_DEADLINE_MINUTES": "{}",  # the posts carry a fixed date
    }  # fmt: skip
    make_user("agent", Role.agent)
    make_user("comms", Role.comms)
    worker = await asyncio.to_thread(start_worker, env, health, tmp_path / "worker.log")
    api = await asyncio.to_thread(start_process, "api", env, f"http://127.0.0.1:{port}/healthz",
                                  tmp_path / "api.log")  # fmt: skip
    callers_trace = "ab" * 16
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            people = await signed_in(client, "agent", "comms")
            text = f"My parcel {ORDER} never came and nobody answers!"
            url = await submitted_draft(
                client, people, await new_post(client, people["agent"], text)
            )
            decided = await client.post(
                f"{url}/decisions",
                headers={**people["comms"], "traceparent": f"00-{callers_trace}-{'cd' * 8}-01"},
                json={"stage": "comms", "decision": "approve", "version": 1},
            )
            assert decided.json()["status"] == "approved", decided.text
    finally:
        for process in (api, worker):
            process.send_signal(signal.SIGTERM)  # each sends what it holds, then stops
        for process in (api, worker):
            await asyncio.to_thread(process.wait, timeout=60)
    # uvicorn stops cleanly, then ends by the signal it stopped for, as a process should.
    assert api.returncode in (0, -signal.SIGTERM), (tmp_path / "api.log").read_text()
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()

    spans = {s.span_id: s for s in collector.received()}
    [request] = [s for s in spans.values() if s.service == "countersign-api"
                 and s.name == "POST /api/v1/drafts/{draft_id}/decisions"]  # fmt: skip
    assert request.trace_id != callers_trace and request.parent_id is None
    [update] = [s for s in spans.values() if s.service == "countersign-api"
                and s.name == "StartWorkflowUpdate:decide"]  # fmt: skip
    assert update.trace_id == request.trace_id
    run = [s for s in spans.values() if s.name == "RunActivity:record_decision"][-1]
    assert run.service == "countersign-worker" and run.trace_id == request.trace_id
    up = chain(run.span_id, spans)  # type: ignore[arg-type]
    assert "StartWorkflowUpdate:decide" in up and up[-1] == request.name, up
