"""`countersign dev`: the embedded stack in one command.

Migrates the SQLite file under DATA_DIR, seeds demo users (and posts on first start), then
starts the Temporal dev server, a worker and the API as child processes pointed at that
server, and stops every child, by process id, on Ctrl-C, SIGTERM or when any child dies.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from countersign.seed import DEMO_PASSWORD, DEMO_USERS, seed_posts, seed_routing, seed_users
from policies.engine import RuleSet
from policies.versions import RuleBook
from records import checkpoints, vault
from records.db import Database
from records.migrations import upgrade
from records.settings import Settings
from workflows import devserver

console = Console()


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _secrets(data_dir: Path) -> dict[str, str]:
    """The dev instance's own secrets (the published development values are refused by
    `countersign api` and `worker`), kept with its data so sign-ins survive a restart."""
    path = data_dir / "dev-secrets.json"
    kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted = {
        "COUNTERSIGN_JWT_SECRET": lambda: secrets.token_urlsafe(32),
        "COUNTERSIGN_CSRF_SECRET": lambda: secrets.token_urlsafe(32),
        "COUNTERSIGN_ACTION_KEY": lambda: secrets.token_urlsafe(32),
        "COUNTERSIGN_SECRETS_KEY": vault.new_key,
    }
    missing = {name: make() for name, make in wanted.items() if name not in kept}
    if missing:  # a first start, or a data folder from before a secret was added
        kept |= missing
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(kept))
    return kept


def _audit_key(data_dir: Path) -> str:
    """The dev instance's audit signing key, made on first start (readable by its owner only)."""
    path = data_dir / checkpoints.KEY_FILE
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(checkpoints.new_key())
    return path.read_text().strip()


def run_dev(settings: Settings) -> int:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # its keys, secrets and database are the service's alone
    for port in (settings.temporal_port, settings.temporal_ui_port, settings.api_port):
        _require_free(settings.api_host if port == settings.api_port else "127.0.0.1", port)

    # Its own secrets, unless the environment gives them: set here too, so the migrations
    # (which seal stored credentials) use the key the API and worker will use.
    for name, value in _secrets(data_dir).items():
        os.environ.setdefault(name, value)
    url = settings.resolved_database_url
    upgrade(url)
    database = Database(url)
    created = seed_users(database)
    seed_routing(database)  # before the posts, so each waits in its queue
    seeded = seed_posts(database, RuleBook(RuleSet.load(settings.rules_file)))
    database.dispose()
    console.print(f"database ready ({len(created)} demo users created, {seeded} demo posts)")

    env = {
        **os.environ,  # with the dev secrets set above (the action key, the JWT secret...)
        # The audit log's signing key stays with the data: checkpoints signed in one run
        # still verify in the next. Each checkpoint is also written outside the database.
        "COUNTERSIGN_AUDIT_SIGNING_KEY": _audit_key(data_dir),
        "COUNTERSIGN_AUDIT_CHECKPOINT_DIR": str(data_dir / checkpoints.SINK_DIR),
        "COUNTERSIGN_DATA_DIR": str(data_dir),
        "COUNTERSIGN_DATABASE_URL": url,
        # `dev` runs its own server: TEMPORAL_ADDRESS from the environment is not read.
        "COUNTERSIGN_TEMPORAL_ADDRESS": f"127.0.0.1:{settings.temporal_port}",
        "COUNTERSIGN_TEMPORAL_NAMESPACE": settings.temporal_namespace,
    }
    children: list[Child] = []
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    try:
        temporal_cmd = devserver.command(
            db_file=data_dir / "temporal.db",
            port=settings.temporal_port,
            ui_port=settings.temporal_ui_port,
            namespace=settings.temporal_namespace,
        )
        children.append(_start("temporal", temporal_cmd, env, logs))
        _wait_for_port("temporal", children, settings.temporal_port, lambda: stopping)
        cli = [sys.executable, "-m", "countersign.cli"]
        children.append(_start("worker", [*cli, "worker"], env, logs))
        children.append(_start("api", [*cli, "api"], env, logs))
        base = f"http://{settings.api_host}:{settings.api_port}"
        _wait_ready(base, children, lambda: stopping)
        _banner(settings, base, logs)
        while not stopping:
            for child in children:
                if child.process.poll() is not None:
                    console.print(
                        f"[red]{child.name} exited with {child.process.returncode}; "
                        f"see {logs / (child.name + '.log')}[/]"
                    )
                    return 1
            time.sleep(0.5)
        return 0
    except _Aborted as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    finally:
        _stop(children)


class _Aborted(Exception):
    pass


def _require_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(
                f"port {port} on {host} is in use; set COUNTERSIGN_API_PORT, "
                "COUNTERSIGN_TEMPORAL_PORT or COUNTERSIGN_TEMPORAL_UI_PORT (and DATA_DIR) "
                "to run another instance"
            ) from exc


def _start(name: str, cmd: list[str], env: dict[str, str], logs: Path) -> Child:
    log = (logs / f"{name}.log").open("ab")
    # A session of its own: Ctrl-C reaches only this runner, which stops children in order.
    process = subprocess.Popen(  # noqa: S603 - our own binaries and interpreter
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    console.print(f"started {name} (pid {process.pid})")
    return Child(name, process)


def _check_alive(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is not None:
            raise _Aborted(f"{child.name} exited with {child.process.returncode} during start-up")


def _wait_for_port(name: str, children: list[Child], port: int, stopped: object) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if stopped():  # type: ignore[operator]
            raise _Aborted("stopped during start-up")
        _check_alive(children)
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise _Aborted(f"{name} did not open port {port} within 60 s")


def _wait_ready(base: str, children: list[Child], stopped: object) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if stopped():  # type: ignore[operator]
            raise _Aborted("stopped during start-up")
        _check_alive(children)
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise _Aborted(f"the API at {base} was not ready within 90 s")


def _stop(children: list[Child]) -> None:
    """API first, then the worker (finishes its tasks), then Temporal; by process id."""
    for child in reversed(children):
        if child.process.poll() is None:
            stop_process(child.process)
            console.print(f"stopped {child.name} (pid {child.process.pid})")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _banner(settings: Settings, base: str, logs: Path) -> None:
    console.print()
    console.print("[bold green]Countersign is running.[/]  Ctrl-C stops everything.")
    console.print(f"  Web UI       {base}/")
    console.print(f"  API docs     {base}/docs")
    console.print(f"  API          {base}/api/v1")
    console.print(f"  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}")
    console.print(f"  Logs         {logs}")
    table = Table("username", "password", "role", title="Demo logins")
    for username, role in DEMO_USERS:
        table.add_row(username, DEMO_PASSWORD, role.value)
    console.print(table)
    console.print(
        f"  try: curl -s -d 'username=agent&password={DEMO_PASSWORD}' {base}/api/v1/auth/token"
    )
