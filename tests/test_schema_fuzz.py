"""Schemathesis over the whole OpenAPI schema, in process and authenticated: no 5xx, and
every response fits the schema. It covers each new route as the API grows.

Driven through schemathesis's Python API (one hypothesis run per operation) rather than its
pytest plugin, which does not work with pytest 9.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.openapi import from_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from records.db import Database
from records.models import Role
from records.settings import Settings
from workflows.connection import TemporalGateway

Headers = dict[str, str]
EXAMPLES_PER_OPERATION = 40
POST = {
    "channel": "x",
    "external_id": "fuzz-1",
    "author": "@c",
    "text": "Hello?",
    "url": "https://x.example/1",
    "received_at": "2026-11-22T09:00:00Z",
}
# What the API promises: no 5xx, and every status, content type, header and body documented.
# Not "schema-valid data is accepted": an opaque cursor or a username can fit the schema and
# still name nothing, and that is rightly a 4xx.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.temporal
def test_no_server_errors_and_responses_fit_the_schema(
    settings: Settings,
    database: Database,
    temporal_gateway: TemporalGateway,
    threaded_worker: str,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
) -> None:
    make_user("fuzzer", *Role)  # every role, so every route is reachable
    make_user("agent", Role.agent)
    auth, agent = login("fuzzer"), login("agent")
    # Draft ids restart in every test; the prefix keeps this run's workflows apart.
    live = settings.model_copy(
        update={"task_queue": threaded_worker, "workflow_id_prefix": f"{threaded_worker}-"}
    )
    app = create_app(live, database=database, temporal=temporal_gateway)
    # Something to act on, so the draft routes are exercised beyond 404s.
    with TestClient(app) as client:
        post = client.post("/api/v1/posts", headers=agent, json=POST).json()
        body = {"post_id": post["id"], "body": "Hi!"}
        assert client.post("/api/v1/drafts", headers=agent, json=body).status_code == 201
    schema = from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Case) -> None:
            case.call_and_validate(headers=auth, checks=CHECKS)

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
