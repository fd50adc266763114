"""`bench/lifecycle.py --profile DIR`: where Countersign's own CPU goes, by function (issue
24, item 1). py-spy samples the API and worker processes for the whole run, every thread
the kernel has running or ready to run at the moment of the sample (a profiler inside the
process sees only its main thread, where the API's endpoints and the worker's activities
run in thread pools): the Python code and the C it calls (SQLite running a statement,
psycopg), by the Python frame it runs under. A thread blocked in a wait is left out, but
on a machine as loaded as this one a thread woken and waiting for a core or the GIL is
counted, under the wait it is leaving (threading's `Condition.wait`, psycopg's `wait`, the
event loop's `run`): read those frames as contention, not work. Not `--gil` (the thread
holding the GIL), which counts a thread as busy while it sits in a system call or wakes
another (a socket's send, a lock's release) and over-counted those frames several times
over. The Temporal core's own threads have no Python frames; the run's CPU per process
(`bench/lifecycle_costs.py`) has it all.
Sampling shares the cores with the run: a profiled run's rates are not the figures. The
bare sides do not touch those processes, so what is sampled is Countersign's side. Each
process's collapsed stacks are written to DIR (`<role>.txt`, for a flame graph) and the
functions with the most samples printed: by self time (where the CPU is spent) and
inclusive (which of the product's calls it is spent under)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 200  # samples a second
TOP = 15
ROOT = str(Path(__file__).resolve().parent.parent)


class Profile:
    def __init__(self, directory: Path, pids: dict[str, int]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.files = {role: directory / f"{role}.txt" for role in pids}
        self.logs = {role: directory / f"{role}.py-spy.log" for role in pids}
        spy = str(Path(sys.executable).with_name("py-spy"))
        self.samplers = [
            subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(RATE),
                 "--output", str(self.files[role]), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=self.logs[role].open("w"),
            )
            for role, pid in pids.items()
        ]  # fmt: skip

    def stop(self) -> None:
        """Stop sampling (py-spy writes its file on SIGINT) and print the summary."""
        for sampler in self.samplers:
            sampler.send_signal(signal.SIGINT)
        for sampler in self.samplers:
            sampler.wait(timeout=60)
        for role, path in self.files.items():
            if path.exists():
                report(role, path)
            else:  # py-spy could not attach (ptrace not allowed?): say so, and why
                print(f"\n{role}: no profile; py-spy said: {self.logs[role].read_text()[-500:]}")


def report(role: str, path: Path) -> None:
    own, under, total = Counter[str](), Counter[str](), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples, frames = int(count), stack.split(";")
        total += samples
        own[_name(frames[-1])] += samples
        for frame in {_name(f) for f in frames if _ours(f)}:
            under[frame] += samples
    if not total:
        print(f"\n{role}: no samples")
        return
    print(f"\n{role}: {total:,} samples ({total / RATE:.1f} s of CPU at {RATE}/s), {path}")
    print("  self (where the CPU is spent):")
    for name, samples in own.most_common(TOP):
        print(f"    {samples / total:6.1%}  {name}")
    print("  under the product's own functions (inclusive):")
    for name, samples in under.most_common(TOP):
        print(f"    {samples / total:6.1%}  {name}")


PACKAGES = ("api", "records", "workflows", "policies", "lifecycle", "connectors", "web",
            "countersign")  # fmt: skip


def _ours(frame: str) -> bool:
    """A frame of the product's code (its path relative, or under the repository), other
    than the process's entry point (under which everything is)."""
    where = frame.partition(" (")[2].removeprefix(f"{ROOT}/")
    return where.split("/", 1)[0] in PACKAGES and not where.startswith("countersign/cli.py")


def _name(frame: str) -> str:
    """`function (path:line)` as `function (path)`, the path from the repository or the
    site-packages folder."""
    function, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{ROOT}/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{function} ({where})"
