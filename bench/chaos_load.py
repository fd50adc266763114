"""`bench/chaos.py`'s clients: drafts taken through their whole lives at a steady rate, over
whichever API process answers, as people behind a load balancer would, retrying what did
not get through (with the same Idempotency-Key, so a retry is the same request) and
keeping every answer that was not a success.

Three lives, by the draft's number: most are approved by comms and published; one in ten
is rejected; one in ten is withdrawn by its author while in review."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD = "chaos-password-123"  # noqa: S105 - throwaway bench users
REPLY = "Thanks for reaching out! We have sent you a direct message."
PEOPLE = ("agent", "comms", "pub")
GIVE_UP_SECONDS = 600.0  # one request, however many retries: then the draft is reported stuck


def expected_status(n: int) -> str:
    return {0: "rejected", 1: "withdrawn"}.get(n % 10, "published")


@dataclass
class Answers:
    """Every answer that was not a success, and the failures to reach any API."""

    statuses: Counter[int] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    server_errors: list[str] = field(default_factory=list)  # 5xx other than 503: a defect
    unreachable: int = 0  # refused or dropped: a killed process, retried elsewhere
    timed_out: int = 0  # no answer in the client's time: a hung API, a defect
    gave_up: list[str] = field(default_factory=list)


@dataclass
class Draft:
    n: int
    post_id: int
    draft_id: int | None = None
    done: bool = False
    last: str = ""  # the last answer's status, for a draft that ended elsewhere


class Clients:
    def __init__(self, ports: list[int], seed: int | None = None) -> None:
        self.ports = ports
        self.random = random.Random(seed)  # which API each request goes to
        self.answers = Answers()
        self.tokens: dict[str, str] = {}
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(120, connect=2),
                                      limits=httpx.Limits(max_connections=200))  # fmt: skip

    async def close(self) -> None:
        await self.http.aclose()

    async def sign_in(self) -> None:
        for name in PEOPLE:
            answer = await self.call("POST", "/api/v1/auth/token", who=None,
                                     data={"username": name, "password": PASSWORD})  # fmt: skip
            self.tokens[name] = answer.json()["access_token"]

    async def call(
        self, method: str, path: str, *, who: str | None, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """The request, to one API process after another until one answers with anything but
        503 (after its Retry-After) or a dropped connection; other answers are returned."""
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GIVE_UP_SECONDS
        while True:
            url = f"http://127.0.0.1:{self.random.choice(self.ports)}{path}"
            try:
                answer = await self.http.request(method, url, headers=headers, **kwargs)
            except httpx.TimeoutException:
                self.answers.timed_out += 1
                wait = 0.5
            except httpx.TransportError:
                self.answers.unreachable += 1
                wait = 0.5
            else:
                if answer.is_success:
                    return answer
                self.answers.statuses[answer.status_code] += 1
                if answer.status_code == 503:
                    retry_after = answer.headers.get("Retry-After", "")
                    if not retry_after.isdigit():  # the API sends seconds, never a date
                        self.answers.unavailable_without_retry_after += 1
                    wait = min(float(retry_after) if retry_after.isdigit() else 1.0, 5.0)
                elif answer.status_code >= 500:
                    self.answers.server_errors.append(f"{method} {path}: {answer.status_code} "
                                                      f"{answer.text[:200]}")  # fmt: skip
                    wait = 1.0
                else:
                    return answer
            if loop.time() + wait > deadline:
                self.answers.gave_up.append(f"{method} {path}")
                raise TimeoutError(f"{method} {path} got no answer in {GIVE_UP_SECONDS} s")
            await asyncio.sleep(wait)

    async def live(self, draft: Draft) -> None:
        """One draft's life, each step's answer checked; a step that fails ends it."""
        key = uuid.uuid4().hex
        made = await self.call("POST", "/api/v1/drafts", who="agent", key=f"{key}-create",
                               json={"post_id": draft.post_id, "body": REPLY})  # fmt: skip
        if not made.is_success:
            draft.last = f"create: {made.status_code}"
            return
        draft.draft_id = made.json()["id"]
        url = f"/api/v1/drafts/{draft.draft_id}"
        steps: list[tuple[str, str, str, dict[str, Any] | None]] = [
            ("agent", "submit", "in_review", None)
        ]
        status = expected_status(draft.n)
        if status == "withdrawn":
            steps.append(("agent", "withdraw", "withdrawn", None))
        else:
            decision = "reject" if status == "rejected" else "approve"
            verdict: dict[str, Any] = {"stage": "comms", "decision": decision, "version": 1}
            if decision == "reject":
                verdict["comment"] = "Please do not promise a DM we cannot send."
            wanted = "rejected" if decision == "reject" else "approved"
            steps.append(("comms", "decisions", wanted, verdict))
            if status == "published":
                steps.append(("pub", "publish", "published", None))
        for who, step, wanted, body in steps:
            answer = await self.call("POST", f"{url}/{step}", who=who, key=f"{key}-{step}",
                                     json=body)  # fmt: skip
            got = answer.json().get("status") if answer.is_success else answer.status_code
            draft.last = f"{step}: {got}"
            if got != wanted:
                return
        draft.done = True
