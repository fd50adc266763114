"""JSON logs (issue 25, item 4): every line of a request carries its id, the person and the
draft; the access line names the route's template, never the raw path; no token, secret or
reply text is ever in a line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest

from countersign import logs
from tests.helpers import new_post

pytestmark = pytest.mark.temporal
Headers = dict[str, str]
REPLY = "Thanks Ana Souza, we have sent you a direct message about order 4242."


@pytest.fixture
def captured() -> Iterator[Callable[[], list[dict]]]:  # type: ignore[type-arg]
    """The JSON lines logged while the test runs, as the service writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_request_s_lines_say_which_request_person_and_draft(
    client: httpx.AsyncClient,
    people: dict[str, Headers],
    captured: Callable[[], list[dict]],  # type: ignore[type-arg]
) -> None:
    agent = people["agent"]
    post_id = await new_post(client, agent, "You charged me twice!")
    made = await client.post("/api/v1/drafts", headers=agent,
                             json={"post_id": post_id, "body": REPLY})  # fmt: skip
    draft_id = made.json()["id"]
    asked = await client.post(f"/api/v1/drafts/{draft_id}/submit",
                              headers={**agent, "X-Request-ID": "lb-7f3a.1"})  # fmt: skip
    assert asked.status_code == 200 and asked.headers["x-request-id"] == "lb-7f3a.1"
    lines = captured()
    access = [line for line in lines if line["logger"] == "countersign.access"]
    submit = next(line for line in access if line.get("request_id") == "lb-7f3a.1")
    assert submit["route"] == "/api/v1/drafts/{draft_id}/submit"
    assert submit["method"] == "POST" and submit["status"] == 200
    assert submit["actor"] == "agent" and submit["draft_id"] == draft_id
    assert submit["duration_ms"] >= 0
    # Each request has an id of its own; none of the lines holds the reply or a token.
    assert len({line["request_id"] for line in access}) == len(access)
    text = "\n".join(json.dumps(line) for line in lines)
    assert "Ana Souza" not in text and "4242" not in text and "Bearer" not in text
    assert agent["Authorization"].split()[1] not in text


async def test_an_id_that_is_not_a_plain_token_is_replaced(
    client: httpx.AsyncClient,
    captured: Callable[[], list[dict]],  # type: ignore[type-arg]
) -> None:
    for given in ("a" * 65, "two words", "semi;colon", "../etc"):
        answer = await client.get("/healthz", headers={"X-Request-ID": given})
        assert answer.headers["x-request-id"] != given
        assert len(answer.headers["x-request-id"]) == 32
    assert (await client.get("/healthz")).headers["x-request-id"]


def test_a_failure_is_logged_by_its_type_not_its_text() -> None:
    try:
        raise ValueError(f"could not post {REPLY}")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "publish failed", None,
                                   exc_info=__import__("sys").exc_info())  # fmt: skip
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["error"] == "ValueError" and line["message"] == "publish failed"
    assert "Ana" not in json.dumps(line)
