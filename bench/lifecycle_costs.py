"""Where the time goes in `bench/lifecycle.py`: the CPU each process of the run spent, by
role (Linux /proc), the Temporal server's calls, by operation (its Prometheus metrics), and
the size of a workflow's history (what the server stores per draft), each reported per
draft with a column per side. Apart from the script, which only takes
these readings before and after each side's round."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import httpx
from temporalio.client import Client


def _role(cmdline: str) -> str:
    words = cmdline.split()
    if "temporal" in cmdline and "server" in words:
        return "temporal server"
    if "thin_api.py" in cmdline:
        return "thin api"
    return words[-1] if words and words[-1] in ("api", "worker") else "other"


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by this process and its children, by role (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    used: dict[str, float] = defaultdict(float)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid != me and ppid != me:
            continue
        role = "this process" if pid == me else _role(cmdline)
        used[role] += (int(fields[11]) + int(fields[12])) / tick
    return used


def report_cpu(count: int, sides: dict[str, dict[str, float]]) -> None:
    """CPU per draft of each process role, a column per side."""
    print("\nCPU per draft (ms)  " + "".join(f"{label:>15}" for label in sides))
    for role in ("temporal server", "this process", "thin api", "api", "worker", "other"):
        if any(cpu.get(role) for cpu in sides.values()):
            cells = "".join(f"{cpu.get(role, 0.0) * 1000 / count:15.1f}" for cpu in sides.values())
            print(f"  {role:18}{cells}")
    totals = "".join(f"{sum(cpu.values()) * 1000 / count:15.1f}" for cpu in sides.values())
    print(f"  {'total':18}{totals}")
    print("  (this process: the bare client and worker, then the HTTP load generator)")


def server_counts(metrics_url: str) -> dict[str, float]:
    """The server's request and persistence counts so far, by operation (Prometheus text)."""
    counts: dict[str, float] = defaultdict(float)
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        name = line.split("{", 1)[0]
        if name not in ("service_requests", "persistence_requests") or 'operation="' not in line:
            continue
        operation = line.split('operation="', 1)[1].split('"', 1)[0]
        counts[f"{name.split('_')[0]} {operation}"] += float(line.rsplit(" ", 1)[1])
    return counts


def report_server(count: int, sides: dict[str, dict[str, float]]) -> None:
    """The Temporal server's calls per draft, by operation, a column per side."""
    print("\nserver calls per draft" + " " * 24 + "".join(f"{label:>15}" for label in sides))
    last = list(sides.values())[-1]
    for key in sorted(set().union(*sides.values()), key=lambda k: -last.get(k, 0)):
        values = [calls.get(key, 0.0) / count for calls in sides.values()]
        if max(values) >= 0.5:
            print(f"  {key[:44]:44}" + "".join(f"{v:15.1f}" for v in values))


HISTORY_SAMPLE = 20  # workflows a side's history size is read from


async def history_bytes(client: Client, query: str) -> float | None:
    """The mean size of a workflow's event history (protobuf bytes, as the server stores
    it) over up to `HISTORY_SAMPLE` of the workflows `query` finds (a visibility query)."""
    sizes = []
    async for found in client.list_workflows(query, limit=HISTORY_SAMPLE):
        handle = client.get_workflow_handle(found.id, run_id=found.run_id)
        history = await handle.fetch_history()
        sizes.append(sum(event.ByteSize() for event in history.events))
    return sum(sizes) / len(sizes) if sizes else None


def report_history(sides: dict[str, float | None]) -> None:
    """History bytes per draft, a column per side (Temporal's own storage per draft)."""
    print("\nhistory per draft (bytes)" + " " * 21 + "".join(f"{label:>15}" for label in sides))
    print(" " * 46 + "".join(f"{v:15,.0f}" if v else f"{'—':>15}" for v in sides.values()))
