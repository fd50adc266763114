"""The worker's liveness, readiness and metrics endpoint (`workflows.health`, issue 25): what
a platform's probes and a Prometheus scraper ask of it, on the real `countersign worker`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from bench.environment import own_secrets
from records.migrations import upgrade
from workflows import health as health_module
from workflows.health import Health, serving


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


async def test_the_endpoint_answers_probes_and_scrapes_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_module, "READ_SECONDS", 0.5)
    health = Health()
    async with serving("127.0.0.1", free_port(), health) as port:
        assert port is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            starting = await http.get("/readyz")
            assert starting.status_code == 503 and starting.json() == {"status": "starting"}
            health.ready = True
            assert (await http.get("/readyz")).status_code == 200
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200
            assert "process_cpu_seconds_total" in metrics.text
            assert (await http.get("/anything")).status_code == 404
            assert (await http.post("/healthz")).status_code == 400
            assert (await http.head("/healthz")).content == b""
        # A client that never finishes its request line is dropped, not waited on forever.
        assert await asyncio.to_thread(raw, port, b"GET /healthz") == b""


async def test_without_a_port_nothing_listens() -> None:
    async with serving("127.0.0.1", 0, Health()) as port:
        assert port is None


@pytest.mark.long(15)
def test_countersign_worker_serves_it_once_it_polls_and_stops_on_sigterm(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    upgrade(url)
    port = free_port()
    environment = {
        **os.environ, **own_secrets(),
        "COUNTERSIGN_DATABASE_URL": url,
        "COUNTERSIGN_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "COUNTERSIGN_TASK_QUEUE": f"health-{port}",
        "COUNTERSIGN_AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "COUNTERSIGN_WORKER_HEALTH_PORT": str(port),
    }  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "countersign.cli", "worker"], env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and worker.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, worker.stdout
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        assert "process_resident_memory_bytes" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
