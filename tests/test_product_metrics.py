"""The product's figures on `/metrics` (issue 25, item 4): drafts by state, actions and their
refusals by kind, the posts waiting and the oldest wait, the last hour's posts, publications
by channel and outcome, beside the process's own metrics; with a real worker, on both
databases."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import FiguresCollector
from lifecycle.words import Role
from records import gauges

pytestmark = pytest.mark.temporal
Headers = dict[str, str]
CLEAN = "Thanks for reaching out! We have sent you a direct message."


async def new_post(client: httpx.AsyncClient, agent: Headers, text: str) -> int:
    """A post that came in just now."""
    post = await client.post("/api/v1/posts", headers=agent, json={
        "channel": "x", "external_id": uuid.uuid4().hex, "author": "@customer", "text": text,
        "url": "https://x.example/c/1", "received_at": datetime.now(UTC).isoformat(),
    })  # fmt: skip
    assert post.status_code == 201, post.text
    return int(post.json()["id"])


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await client.get("/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return float(found.get((name, tuple(sorted(labels.items()))), 0.0))


async def test_the_figures_follow_the_record_and_the_actions_their_outcomes(
    client: httpx.AsyncClient, people: dict[str, Headers], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FiguresCollector, "FRESH_SECONDS", 0.0)  # every scrape reads anew
    agent = people["agent"]
    before = await scrape(client)
    assert value(before, "process_resident_memory_bytes") > 0
    waiting = [await new_post(client, agent, f"Where is my order {n}?") for n in range(3)]
    found = await scrape(client)
    assert value(found, "countersign_queue_waiting", queue="none") == 3
    assert value(found, "countersign_queue_oldest_wait_seconds", queue="none") >= 0
    assert value(found, "countersign_posts_received_last_hour") == 3

    draft = (await client.post("/api/v1/drafts", headers=agent,
                               json={"post_id": waiting[0], "body": CLEAN})).json()  # fmt: skip
    url = f"/api/v1/drafts/{draft['id']}"
    assert (await client.post(f"{url}/submit", headers=agent)).status_code == 200
    # The author approving their own reply: refused, and counted as refused.
    own = {"stage": "comms", "decision": "approve", "version": 1}
    assert (await client.post(f"{url}/decisions", headers=agent, json=own)).status_code == 403
    approved = await client.post(f"{url}/decisions", headers=people["comms"], json=own)
    assert approved.json()["status"] == "approved"
    stale = await client.post(f"{url}/submit", headers=agent)
    assert stale.status_code == 409
    published = await client.post(f"{url}/publish", headers=people["pub"])
    assert published.json()["status"] == "published"

    after = await scrape(client)
    assert value(after, "countersign_drafts", status="published") == 1
    assert value(after, "countersign_publications", channel="x", status="confirmed") == 1
    assert value(after, "countersign_queue_waiting", queue="none") == 2  # one answered
    counted = {
        (action, outcome): value(after, "countersign_actions_total", action=action,
                                 outcome=outcome)
        for action, outcome in (("submit", "done"), ("decide", "forbidden"),
                                ("decide", "done"), ("submit", "conflict"), ("publish", "done"))
    }  # fmt: skip
    assert counted == {("submit", "done"): 1, ("decide", "forbidden"): 1, ("decide", "done"): 1,
                       ("submit", "conflict"): 1, ("publish", "done"): 1}  # fmt: skip
    # Labels are the product's words, never a person, a post or a reply's text.
    text = (await client.get("/metrics")).text
    assert "agent" not in re.sub(r"user_agent|agents?_", "", text)
    assert CLEAN not in text


DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "countersign.json"
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def test_every_metric_the_dashboard_asks_for_is_one_the_service_exposes(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., Headers]
) -> None:
    make_user("ana", Role.agent)
    app_client.get("/api/v1/posts", headers=login("ana"))  # the HTTP metrics have a sample
    exposed = {family.name for family in text_string_to_metric_families(
        app_client.get("/metrics").text)}  # fmt: skip
    health = CollectorRegistry()  # the worker's endpoint: the process's own, as the API's
    ProcessCollector(registry=health)
    exposed |= {family.name for family in health.collect()}
    asked = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            asked |= set(re.findall(r"\b((?:countersign|process)_[a-z_]+)\b", target["expr"]))
    assert asked, "the dashboard asks for nothing"

    def family(name: str) -> str:
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in exposed:
                return name.removesuffix(suffix)
        return name

    assert {family(name) for name in asked} <= exposed, sorted(
        {family(name) for name in asked} - exposed
    )


def test_the_figures_are_read_at_most_once_in_a_while_however_often_metrics_is_asked() -> None:
    """`/metrics` is open: asking for it in a loop must not make the database count the
    record in a loop."""
    reads: list[int] = []

    def read() -> gauges.Figures:
        reads.append(1)
        return gauges.Figures({"draft": len(reads)}, 0, {}, {}, 0, {})

    collector = FiguresCollector()
    collector.read = read
    for _ in range(50):
        list(collector.collect())
    assert len(reads) == 1
    collector._last = (collector._last[0] - FiguresCollector.FRESH_SECONDS, collector._last[1])  # type: ignore[index]
    drafts = next(m for m in collector.collect() if m.name == "countersign_drafts")
    assert len(reads) == 2 and drafts.samples[0].value == 2
