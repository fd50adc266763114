"""Schemathesis over the whole OpenAPI schema, in process and authenticated: no 5xx, and
every response fits the schema, call by call and in sequences of calls (stateful). It
covers each new route as the API grows.

Driven through schemathesis's Python API (one hypothesis run per operation) rather than its
pytest plugin, which does not work with pytest 9.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Flaky
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
from lifecycle.words import Role
from records import users
from records.db import Database
from records.settings import Settings
from tests.conftest import PASSWORD
from workflows.connection import TemporalGateway

Headers = dict[str, str]
EXAMPLES_PER_OPERATION = 40
STATEFUL_SCENARIOS = 60  # sequences of up to 8 calls each
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


@pytest.mark.long(35)
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


@pytest.mark.long(35)
@pytest.mark.temporal
def test_sequences_of_calls_find_no_server_error(
    settings: Settings,
    database: Database,
    temporal_gateway: TemporalGateway,
    threaded_worker: str,
    make_user: Callable[..., str],
) -> None:
    """Stateful: schemathesis chains calls by the links it infers from the schema (a post,
    then its drafts, then submit, decide, publish, withdraw, evidence, audit, users and their
    sessions), so actions run on things that exist, in orders a client might try. Each
    scenario starts with a fresh sign-in and a real post and draft, which the draft and
    post actions act on. No sequence may end in a 5xx or an answer outside the schema."""
    make_user("fuzzer", *Role)
    live = settings.model_copy(
        update={"task_queue": threaded_worker, "workflow_id_prefix": f"{threaded_worker}-"}
    )
    app = create_app(live, database=database, temporal=temporal_gateway)
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    scenarios = 0
    with TestClient(app) as client:
        schema = from_asgi("/openapi.json", app)

        class Sequences(schema.as_state_machine()):  # type: ignore[misc]
            def setup(self) -> None:
                """The fuzzer as it started (a scenario may have revoked its sessions or
                taken its roles), signed in afresh, with a post and a draft of its own."""
                nonlocal scenarios
                scenarios += 1
                with database.write_session() as session:
                    users.set_disabled(session, "fuzzer", False, actor="test", actor_role="admin")
                    users.set_roles(session, "fuzzer", list(Role), actor="test", actor_role="admin")
                token = client.post(
                    "/api/v1/auth/token", data={"username": "fuzzer", "password": PASSWORD}
                ).json()["access_token"]
                self.auth = {"Authorization": f"Bearer {token}"}
                key = uuid.uuid4().hex  # a post of its own (the same text again would be spam)
                post = {**POST, "external_id": key, "text": f"Hello? ({key[:8]})"}
                self.post_id = client.post("/api/v1/posts", headers=self.auth, json=post).json()[
                    "id"
                ]
                draft = {"post_id": self.post_id, "body": "Hi!"}
                self.draft_id = client.post("/api/v1/drafts", headers=self.auth, json=draft).json()[
                    "id"
                ]

            def before_call(self, case: Case) -> None:
                for name, value in (("post_id", self.post_id), ("draft_id", self.draft_id)):
                    if case.path_parameters and name in case.path_parameters:
                        case.path_parameters[name] = value
                if isinstance(case.body, dict) and "post_id" in case.body:
                    case.body["post_id"] = self.post_id

            def get_call_kwargs(self, case: Case) -> dict[str, object]:
                return {"headers": self.auth}

            def after_call(self, response: Any, case: Case) -> None:
                super().after_call(response, case)
                statuses[f"{response.status_code // 100}xx"] += 1

            def validate_response(
                self, response: object, case: Case, *args: object, **kwargs: object
            ) -> None:
                """Every failure is kept, and the scenario goes on (as schemathesis's own
                runner records them)."""
                try:
                    case.validate_response(response, checks=CHECKS)  # type: ignore[arg-type]
                except Exception as exc:
                    failures.append(f"{case.method} {case.formatted_path}: {exc}"[:2000])

        # A run ends early when hypothesis calls a scenario flaky (a replay met other data:
        # the service's state lives on); it is run again until the scenarios asked for
        # have all been played: the bound below is never judged on a short run.
        for _attempt in range(5):
            if scenarios >= STATEFUL_SCENARIOS:
                break
            with contextlib.suppress(Flaky):
                Sequences.run(
                    settings=hypothesis_settings(
                        max_examples=STATEFUL_SCENARIOS - scenarios,
                        stateful_step_count=8,
                        deadline=None,
                        database=None,
                        # A failure is reported as found, not shrunk by replays that see
                        # other data.
                        phases=[Phase.generate],
                        suppress_health_check=list(HealthCheck),
                    )
                )
    assert not failures, "\n\n".join(failures)
    assert scenarios >= STATEFUL_SCENARIOS, scenarios
    # The sequences reached the service's own answers, not only its door.
    assert statuses["2xx"] >= STATEFUL_SCENARIOS and statuses["5xx"] == 0, statuses
