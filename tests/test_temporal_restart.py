"""API calls ride out a Temporal restart: an action sent while the server is down waits for
it to come back (the same server and persistence file) and then takes effect, once. The
server stays down longer than the SDK's own RPC retries last (10 s), so the API's retry is
what carries the call through."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import func, select

from api.app import create_app
from countersign.devrunner import stop_process
from lifecycle.words import Role
from records import audit
from records.db import Database
from records.draft_models import Decision
from records.settings import Settings
from tests.helpers import free_ports, submitted_draft
from workflows import devserver
from workflows.connection import TemporalGateway, connect
from workflows.worker import ACTIVITY_THREADS, build_worker

pytestmark = [pytest.mark.temporal, pytest.mark.long(16)]
PASSWORD = "correct horse battery staple"
DOWNTIME = 12.0  # seconds; longer than the SDK's RPC retries, shorter than the API's


class DevServer:
    """A dev server this test can stop and start again on the same port and file."""

    def __init__(self, db_file: Path) -> None:
        self.port, ui_port = free_ports(2)
        self.command = devserver.command(
            db_file=db_file, port=self.port, ui_port=ui_port, namespace="default"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=30)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[DevServer]:
    dev = DevServer(tmp_path / "temporal.db")
    dev.start()
    try:
        await connect(dev.address, "default", timeout=60)
        yield dev
    finally:
        dev.stop()


@pytest.fixture
async def client(
    server: DevServer, settings: Settings, database: Database, make_user: Callable[..., str]
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, dict[str, str]]]]:
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    live = settings.model_copy(
        update={
            "temporal_address": server.address,
            "task_queue": queue,
            "workflow_id_prefix": f"{queue}-",
        }
    )
    for name, role in (("agent", Role.agent), ("comms", Role.comms)):
        make_user(name, role)
    worker_client = await connect(server.address, "default")
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(worker_client, queue, database, executor):
            gateway = TemporalGateway(server.address, "default")
            app = create_app(live, database=database, temporal=gateway)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                    people = {}
                    for name in ("agent", "comms"):
                        token = await http.post(
                            "/api/v1/auth/token", data={"username": name, "password": PASSWORD}
                        )
                        people[name] = {"Authorization": f"Bearer {token.json()['access_token']}"}
                    yield http, people


async def test_an_action_sent_while_temporal_restarts_waits_and_takes_effect_once(
    server: DevServer,
    client: tuple[httpx.AsyncClient, dict[str, dict[str, str]]],
    database: Database,
) -> None:
    http, people = client
    url = await submitted_draft(http, people)

    server.stop()
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    pending = asyncio.create_task(
        http.post(f"{url}/decisions", headers=people["comms"], json=approve)
    )
    await asyncio.sleep(DOWNTIME)
    assert not pending.done(), "the action gave up while the server was down"
    server.start()
    decided = await asyncio.wait_for(pending, timeout=90)

    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    with database.read_session() as session:
        count = session.exec(select(func.count()).select_from(Decision)).one()
        assert count == 1
        assert audit.verify(session).ok
