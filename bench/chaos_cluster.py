"""`bench/chaos.py`'s processes: a PostgreSQL cluster of its own (so that crashing it harms
nobody else's), a Temporal dev server on a file, and the API and worker processes it kills
and starts again. Each can be killed and started the way a platform would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.environment import resident_bytes, stable_port
from workflows import devserver


def _postgres_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path is None:
        raise SystemExit(f"{name} not found: the chaos bench runs a PostgreSQL of its own")
    return on_path


class PrivatePostgres:
    """A throwaway cluster of its own, reached on a Unix socket in its own folder only (no
    TCP port another process could take between a crash and the restart), crashed with
    `pg_ctl stop -m immediate` (no checkpoint; recovery from the WAL on the next start). As
    root it runs as the `postgres` user, which initdb requires, in a folder under the
    system's temporary directory that the user can reach, removed by `stop`."""

    PORT = 5432  # names the socket file only

    def __init__(self) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="countersign-chaos-pg-"))
        self.as_owner: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.data}&port={self.PORT}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_owner, *args], check=True, capture_output=True)

    def init(self) -> None:
        if self.as_owner:
            shutil.chown(self.data, "postgres", "postgres")
        self.data.chmod(0o700)  # the socket inside is the cluster's only way in
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "--no-sync")  # fmt: skip
        self.start()

    def start(self) -> None:
        options = (f"-p {self.PORT} -k {self.data} -c listen_addresses='' "
                   "-c max_connections=300")  # fmt: skip
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-w",
                  "-l", str(self.data / "server.log"), "start")  # fmt: skip

    def crash(self) -> None:
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        subprocess.run([*self.as_owner, _postgres_bin("pg_ctl"), "-D", str(self.data), "-m",
                        "fast", "stop"], capture_output=True)  # fmt: skip
        shutil.rmtree(self.data, ignore_errors=True)


class TemporalServer:
    """The dev server on a SQLite file, so that a restart keeps every workflow."""

    def __init__(self, workdir: Path) -> None:
        self.db_file = workdir / "temporal.db"
        self.port = stable_port()
        self.log = workdir / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        command = devserver.command(
            db_file=self.db_file, port=self.port, ui_port=stable_port(), namespace="default"
        )
        with self.log.open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the Temporal dev server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@dataclass
class Slot:
    """One API or worker process, as a platform keeps it: started again when it dies."""

    kind: str  # "api" or "worker"
    n: int
    environment: dict[str, str]
    logs: Path
    port: int = field(default_factory=stable_port)  # the API's, or the worker's health port
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    started_at: float = 0.0  # time.monotonic() of the last start
    rss_at_start: int | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.n}"

    def start(self) -> None:
        setting = "COUNTERSIGN_API_PORT" if self.kind == "api" else "COUNTERSIGN_WORKER_HEALTH_PORT"
        with (self.logs / f"{self.name}.log").open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "countersign.cli", self.kind],
                env={**self.environment, setting: str(self.port)},
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.starts += 1
        self.started_at = time.monotonic()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM), without waiting."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not stopped within 30 s."""
        self.terminate()
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        path = "/healthz" if self.kind == "api" else "/readyz"
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def rss(self) -> int | None:
        return resident_bytes(self.process.pid) if self.alive and self.process is not None else None
