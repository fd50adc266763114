"""What sealing an action costs: CPU per seal (the API) and per check (the worker), for
each kind of action, the largest edit (a 10,000-character text) included. The baseline,
timed in the same run, is the JSON encoding Temporal's payload converter does for the same
request anyway. Target: seal + check under 1 ms of CPU per action.

    .venv/bin/python bench/seals.py [--rounds N]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from temporalio.converter import DataConverter

from lifecycle import seals
from workflows.contracts import (
    Actor,
    DecisionRequest,
    EditRequest,
    PublishRequest,
    SubmitRequest,
    WithdrawRequest,
)

KEY = "bench-action-key-0123456789abcdef0123456789"
ACTOR = Actor(username="reviewer.one", roles=["comms", "legal", "supervisor"])
REQUESTS: dict[str, Any] = {
    "submit": SubmitRequest(actor=ACTOR, version=3),
    "edit (10,000 chars)": EditRequest(actor=ACTOR, body="x" * 10_000, expected_version=3),
    "decide": DecisionRequest(
        actor=ACTOR, stage="legal", decision="request_changes", version=3, comment="Too strong."
    ),
    "publish at": PublishRequest(actor=ACTOR, at=datetime(2026, 12, 1, tzinfo=UTC), version=3),
    "withdraw": WithdrawRequest(actor=ACTOR),
}


def cpu_us(call: Callable[[], object], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    converter = DataConverter.default.payload_converter
    print(
        f"{'action':22} {'seal µs':>9} {'check µs':>9} {'encode µs':>10} {'seal+check / 1 ms':>18}"
    )
    worst = 0.0
    claims = {"workflow_id": "draft-1", "update": "decide", "update_id": "u" * 32}
    now = int(time.time() * 1000)
    for name, request in REQUESTS.items():
        sealed = dataclasses.replace(
            request, seal=seals.seal(KEY, author="agent", request=request, now_ms=now, **claims)
        )
        rounds = []

        def sealing(request: Any = request) -> object:
            return seals.seal(KEY, author="agent", request=request, now_ms=now, **claims)

        def checking(sealed: Any = sealed) -> object:
            return seals.verify([KEY], sealed, now_ms=now, **claims)

        def encoding(sealed: Any = sealed) -> object:
            return converter.to_payloads([sealed])

        for _ in range(args.rounds):
            seal = cpu_us(sealing, args.count)
            check = cpu_us(checking, args.count)
            encode = cpu_us(encoding, args.count)
            rounds.append((seal, check, encode))
        seal, check, encode = (statistics.median(r[i] for r in rounds) for i in range(3))
        worst = max(worst, (seal + check) / 1000)
        print(f"{name:22} {seal:9.1f} {check:9.1f} {encode:10.1f} {(seal + check) / 1000:18.3f}")
    print(f"\nworst seal + check: {worst:.3f} of the 1 ms budget (medians of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
