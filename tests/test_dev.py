"""`countersign dev` (what `make run` runs), as a newcomer uses it: two instances side by
side, each with its own data and ports; a demo agent logs in, ingests a post twice and sees
one post in the queue; SIGTERM stops every child."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from countersign.seed import DEMO_PASSWORD, DEMO_POSTS, DEMO_QUEUES
from tests.helpers import free_ports

READY_LINE = "Countersign is running."
# The banner's last line: read before it, the banner may be only half written.
BANNER_END = "/api/v1/auth/token"


def start_instance(data_dir: Path) -> tuple[subprocess.Popen[str], str, Path]:
    api_port, temporal_port, ui_port = free_ports(3)
    env = {
        **os.environ,
        "COUNTERSIGN_DATA_DIR": str(data_dir),
        "COUNTERSIGN_API_PORT": str(api_port),
        "COUNTERSIGN_TEMPORAL_PORT": str(temporal_port),
        "COUNTERSIGN_TEMPORAL_UI_PORT": str(ui_port),
        "COUNTERSIGN_TEMPORAL_ADDRESS": "127.0.0.1:1",  # dev must not read it
        "COLUMNS": "200",
    }
    env.pop("COUNTERSIGN_DATABASE_URL", None)
    out = data_dir.parent / f"{data_dir.name}.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "countersign.cli", "dev"],
        env=env,
        stdout=out.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, f"http://127.0.0.1:{api_port}", out


def wait_for_banner(process: subprocess.Popen[str], out: Path) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = out.read_text()
        if READY_LINE in text and BANNER_END in text:
            return text
        assert process.poll() is None, text
        time.sleep(0.3)
    pytest.fail(f"dev did not become ready:\n{out.read_text()}")


def child_pids(text: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in re.findall(r"started (\w+) \(pid (\d+)\)", text)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.long
@pytest.mark.temporal
def test_two_dev_instances_run_side_by_side_and_stop_cleanly(tmp_path: Path) -> None:
    instances = [start_instance(tmp_path / name) for name in ("first", "second")]
    try:
        for process, base, out in instances:
            banner = wait_for_banner(process, out)
            assert f"{base}/docs" in banner and "Temporal UI" in banner
            assert "agent2" in banner and DEMO_PASSWORD in banner
            assert httpx.get(f"{base}/docs").status_code == 200
            ready = httpx.get(f"{base}/readyz").json()
            assert ready == {"ready": True, "database": True, "temporal": True}

            token = httpx.post(
                f"{base}/api/v1/auth/token",
                data={"username": "agent", "password": DEMO_PASSWORD},
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            post = {
                "channel": "x",
                "external_id": f"story-{base}",
                "author": "@newcomer",
                "text": "Hello, is anyone there?",
                "url": "https://x.example/newcomer/1",
                "received_at": "2026-11-22T09:00:00Z",
            }
            codes = [
                httpx.post(f"{base}/api/v1/posts", json=post, headers=auth).status_code
                for _ in range(2)
            ]
            assert codes == [201, 200]
            queue = httpx.get(f"{base}/api/v1/posts?limit=200", headers=auth).json()["items"]
            mine = [p for p in queue if p["external_id"] == post["external_id"]]
            assert len(mine) == 1
            # Each instance has its own data: the demo posts plus only its own story post.
            assert len(queue) == len(DEMO_POSTS) + 1
            # The demo team's queues are there, and every post waits in one of them.
            queues = httpx.get(f"{base}/api/v1/queues", headers=auth).json()
            assert [q["name"] for q in queues] == [q["name"] for q in DEMO_QUEUES]
            assert all(p["queue_id"] in {q["id"] for q in queues} for p in queue)

        for process, _base, out in instances:
            pids = child_pids(out.read_text())
            assert set(pids) == {"temporal", "worker", "api"}
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, out.read_text()
            for name, pid in pids.items():
                assert not alive(pid), f"{name} (pid {pid}) still running after dev stopped"
    finally:
        # A failed check leaves dev running: SIGTERM, so it stops its children by pid
        # (a kill would orphan them); a kill only if it does not stop.
        for process, _base, _out in instances:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
