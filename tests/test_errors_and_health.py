"""problem+json for every error class, body limits, health, readiness and metrics."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import func, select

from api.app import create_app
from lifecycle.words import Role
from records.db import Database, out_of_reach
from records.post_models import Post
from records.settings import Settings
from workflows.connection import TemporalGateway

Headers = dict[str, str]


@pytest.fixture
def agent(make_user: Callable[..., str], login: Callable[..., Headers]) -> Headers:
    make_user("agent", Role.agent)
    return login("agent")


def posts_stored(database: Database) -> int:
    with database.read_session() as session:
        return int(session.exec(select(func.count()).select_from(Post)).one())


def test_bodies_over_the_limit_are_refused_with_413_and_nothing_written(
    app_client: TestClient, agent: Headers, database: Database, settings: Settings
) -> None:
    big_text = "a" * (settings.max_body_bytes + 10)
    body = {
        "channel": "x",
        "external_id": "1",
        "author": "@a",
        "text": big_text,
        "url": "https://x.example/1",
        "received_at": "2026-11-01T09:00:00Z",
    }
    declared = app_client.post("/api/v1/posts", json=body, headers=agent)
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert declared.json()["status"] == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"channel":"x","external_id":"1","author":"@a","text":"'
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"a" * 65536
        yield b'","url":"https://x.example/1","received_at":"2026-11-01T09:00:00Z"}'

    streamed = app_client.post(
        "/api/v1/posts", content=chunks(), headers={**agent, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert posts_stored(database) == 0


def test_not_found_and_malformed_json_are_problems(app_client: TestClient, agent: Headers) -> None:
    missing = app_client.get("/api/v1/posts/424242", headers=agent)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["title"] == "Not found" and "424242" in missing.json()["detail"]
    nowhere = app_client.get("/api/v1/nothing-here", headers=agent)
    assert nowhere.status_code == 404
    assert nowhere.headers["content-type"] == "application/problem+json"
    broken = app_client.post(
        "/api/v1/posts", content=b"{not json", headers={**agent, "Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["errors"]


def test_healthz_and_metrics_are_open(app_client: TestClient, agent: Headers) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    app_client.get("/api/v1/posts", headers=agent)
    metrics = app_client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert (
        'countersign_http_requests_total{method="GET",route="/api/v1/posts",status="200"} 1.0'
        in metrics.text
    )


def test_readyz_reports_temporal_down(app_client: TestClient) -> None:
    response = app_client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "database": True, "temporal": False}


@pytest.mark.temporal
def test_readyz_is_ready_with_database_and_temporal(
    settings: Settings, database: Database, temporal_gateway: TemporalGateway
) -> None:
    app = create_app(settings, database=database, temporal=temporal_gateway)
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json() == {"ready": True, "database": True, "temporal": True}


def test_an_unreachable_database_answers_503_with_retry_after(settings: Settings) -> None:
    """PostgreSQL restarting or failed over: every request that needs it is told to come
    back (503 and Retry-After, as a load balancer and a client expect), never a 500; the
    metrics behind sign-in too, whose check runs outside the app's handlers."""
    gone = Database("postgresql+psycopg://postgres@127.0.0.1:1/countersign")
    app = create_app(settings.model_copy(update={"endpoints_private": True}), database=gone)
    token = app.state.tokens.issue("agent").access_token  # well signed: its session is read
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        answers = {
            "sign-in": client.post(
                "/api/v1/auth/token", data={"username": "agent", "password": "x" * 12}
            ),
            "queue": client.get("/api/v1/posts", headers=bearer),
            "metrics": client.get("/metrics", headers=bearer),
        }
        ready = client.get("/readyz")
    gone.dispose()
    for name, answer in answers.items():
        assert answer.status_code == 503, (name, answer.text)
        assert answer.headers["content-type"] == "application/problem+json", name
        assert answer.headers["Retry-After"].isdigit(), name
        assert "database" in answer.json()["detail"], name
    assert ready.status_code == 503 and ready.json()["database"] is False


def _wrapped(original: BaseException) -> DBAPIError:
    return DBAPIError.instance("SELECT 1", {}, original, Exception)  # as SQLAlchemy raises


@pytest.mark.parametrize(
    ("original", "away"),
    [
        (psycopg.OperationalError("connection failed: Connection refused"), True),
        (psycopg.errors.AdminShutdown(), True),  # 57P01: the server is shutting down
        (psycopg.errors.CannotConnectNow(), True),  # 57P03: still starting
        (psycopg.errors.TooManyConnections(), True),  # 53300
        (psycopg.errors.ReadOnlySqlTransaction(), True),  # 25006: a standby after failover
        (psycopg.errors.QueryCanceled(), False),  # 57014: our statement took too long
        (psycopg.errors.UndefinedTable(), False),  # a migration not run: ours to fix
        (psycopg.errors.UniqueViolation(), False),
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("no such table: drafts"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_only_a_database_out_of_reach_is_a_503(original: BaseException, away: bool) -> None:
    assert out_of_reach(_wrapped(original)) is away


def test_a_database_fault_of_ours_stays_a_500(settings: Settings, database: Database) -> None:
    app = create_app(settings, database=database)

    @app.get("/broken")
    def broken() -> None:
        with database.read_session() as session:
            session.execute(text("SELECT * FROM no_such_table"))

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/broken")
    assert answer.status_code == 500 and "Retry-After" not in answer.headers


def test_an_action_while_temporal_is_unreachable_answers_503_with_retry_after(
    settings: Settings, database: Database, make_user: Callable[..., str]
) -> None:
    """Nothing listens at the settings' Temporal address: the API waits its retry time for
    the workflow service, then says to come back, with when."""
    make_user("agent", Role.agent)
    app = create_app(settings.model_copy(update={"temporal_retry_seconds": 0.5}),
                     database=database)  # fmt: skip
    with TestClient(app) as client:
        token = client.post(
            "/api/v1/auth/token",
            data={"username": "agent", "password": "correct horse battery staple"},
        ).json()["access_token"]
        agent = {"Authorization": f"Bearer {token}"}
        post = client.post("/api/v1/posts", headers=agent, json={
            "channel": "x", "external_id": "t-503", "author": "@c", "text": "Hello?",
            "url": "https://x.example/1", "received_at": "2026-11-22T09:00:00Z",
        })  # fmt: skip
        body = {"post_id": post.json()["id"], "body": "Thanks, we will DM you."}
        made = client.post("/api/v1/drafts", headers=agent, json=body)
    assert made.status_code == 503, made.text
    assert made.headers["Retry-After"].isdigit()
    assert made.headers["content-type"] == "application/problem+json"
