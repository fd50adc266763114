"""The reply lifecycle over HTTP, with the real dev server, a worker and both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import func, select

from records import audit
from records.db import Database
from records.draft_models import Decision, Draft, OutboxMessage
from tests.helpers import new_post

pytestmark = pytest.mark.temporal
Headers = dict[str, str]
FAULT = "We are sorry, this was our fault. We have sent you a direct message."
CLEAN = "Thanks for reaching out! We have sent you a direct message."


async def new_draft(client: httpx.AsyncClient, agent: Headers, body: str, **headers: str) -> dict:  # type: ignore[type-arg]
    post_id = await new_post(client, agent, "You charged me twice!")
    response = await client.post(
        "/api/v1/drafts", headers={**agent, **headers}, json={"post_id": post_id, "body": body}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


async def test_draft_submit_comms_legal_approved_over_http(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    draft = await new_draft(client, people["agent"], FAULT)
    assert (draft["status"], draft["version"], draft["author"]) == ("draft", 1, "agent")
    url = f"/api/v1/drafts/{draft['id']}"

    submitted = await client.post(f"{url}/submit", headers=people["agent"])
    assert submitted.status_code == 200, submitted.text
    assert (submitted.json()["status"], submitted.json()["stage"]) == ("in_review", "comms")
    assert submitted.json()["route"] == ["comms", "legal"]
    queue = (await client.get("/api/v1/reviews", headers=people["comms"])).json()["items"]
    assert [d["id"] for d in queue] == [draft["id"]]
    assert (await client.get("/api/v1/reviews", headers=people["legal"])).json()["items"] == []

    approve = {"stage": "comms", "decision": "approve", "version": 1}
    assert (await client.post(f"{url}/decisions", headers=people["comms"], json=approve)).json()[
        "stage"
    ] == "legal"
    legal = {"stage": "legal", "decision": "approve", "version": 1}
    done = (await client.post(f"{url}/decisions", headers=people["legal"], json=legal)).json()
    assert done["status"] == "approved"
    assert [(d["stage"], d["reviewer"]) for d in done["decisions"]] == [
        ("comms", "comms"),
        ("legal", "legal"),
    ]
    assert "timeline" not in done  # an action answers the view; the detail has the rest
    detail = (await client.get(url, headers=people["agent"])).json()
    assert [v["version"] for v in detail["versions"]] == [1]
    assert [e["action"] for e in detail["timeline"]] == [
        "draft.created",
        "draft.submitted",
        "draft.approve",
        "draft.approve",
    ]
    with database.read_session() as session:
        assert audit.verify(session).ok


async def test_refusals_are_clear_problems(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    draft = await new_draft(client, people["agent"], CLEAN)
    url = f"/api/v1/drafts/{draft['id']}"
    # Another agent cannot see the draft at all (the workflow refuses non-authors too).
    assert (await client.post(f"{url}/submit", headers=people["agent2"])).status_code == 404
    assert (await client.post(f"{url}/submit", headers=people["agent"])).status_code == 200

    approve = {"stage": "comms", "decision": "approve", "version": 1}
    author_decides = await client.post(f"{url}/decisions", headers=people["agent"], json=approve)
    assert author_decides.status_code == 403
    wrong_stage = await client.post(
        f"{url}/decisions", headers=people["comms"], json={**approve, "stage": "legal"}
    )
    assert wrong_stage.status_code == 403
    stale = await client.post(
        f"{url}/decisions", headers=people["comms"], json={**approve, "version": 2}
    )
    assert stale.status_code == 409
    assert "current version is 1" in stale.json()["detail"]
    no_comment = await client.post(
        f"{url}/decisions", headers=people["comms"], json={**approve, "decision": "reject"}
    )
    assert no_comment.status_code == 422
    assert no_comment.headers["content-type"] == "application/problem+json"
    edit_in_review = await client.put(
        url, headers=people["agent"], json={"body": FAULT, "expected_version": 1}
    )
    assert edit_in_review.status_code == 409
    assert (await client.get("/api/v1/drafts/999999", headers=people["comms"])).status_code == 404
    # An agent sees only their own drafts.
    assert (await client.get(url, headers=people["agent2"])).status_code == 404
    assert (await client.get("/api/v1/drafts", headers=people["agent2"])).json()["items"] == []


async def test_a_blocked_reply_is_a_422_with_findings_and_stays_editable(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    draft = await new_draft(client, people["agent"], "What a damn mess, sorry.")
    url = f"/api/v1/drafts/{draft['id']}"
    submit_once = {**people["agent"], "Idempotency-Key": "submit-1"}
    blocked = await client.post(f"{url}/submit", headers=submit_once)
    assert blocked.status_code == 422
    problem = blocked.json()
    assert [f["category"] for f in problem["findings"]] == ["profanity"]
    assert problem["ruleset_version"]

    keyed = {**people["agent"], "Idempotency-Key": "edit-1"}
    edit = {"body": CLEAN, "expected_version": 1}
    edited = await client.put(url, headers=keyed, json=edit)
    assert edited.status_code == 200 and edited.json()["version"] == 2
    # A retry with the same key replays the answer; the same edit without it is now stale.
    retried = await client.put(url, headers=keyed, json=edit)
    assert retried.status_code == 200 and retried.json()["version"] == 2
    stale = await client.put(url, headers=people["agent"], json=edit)
    assert stale.status_code == 409
    assert "current version is 2" in stale.json()["detail"]
    # The blocked submission retried with its key: the same answer, the findings of the
    # version it checked (read from the record, not from the clean version now current).
    replayed = await client.post(f"{url}/submit", headers=submit_once)
    assert replayed.status_code == 422 and replayed.json()["findings"] == problem["findings"]

    submitted = await client.post(f"{url}/submit", headers=people["agent"])
    assert submitted.json()["status"] == "in_review"
    withdrawn = await client.post(f"{url}/withdraw", headers=people["boss"])
    assert withdrawn.json()["status"] == "withdrawn"
    again = await client.post(f"{url}/submit", headers=people["agent"])
    assert again.status_code == 409


async def test_the_same_idempotency_key_twenty_times_has_one_effect(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    first = await new_draft(client, people["agent"], CLEAN, **{"Idempotency-Key": "create-1"})
    again = await new_draft(client, people["agent"], CLEAN, **{"Idempotency-Key": "create-1"})
    assert again["id"] == first["id"]
    url = f"/api/v1/drafts/{first['id']}"
    await client.post(f"{url}/submit", headers=people["agent"])
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    headers = {**people["comms"], "Idempotency-Key": "approve-1"}
    codes = {
        (await client.post(f"{url}/decisions", headers=headers, json=approve)).status_code
        for _ in range(20)
    }
    assert codes == {200}
    with database.read_session() as session:
        assert session.exec(select(func.count()).select_from(Draft)).one() == 1
        count = select(func.count()).select_from(Decision).where(Decision.draft_id == first["id"])
        assert session.exec(count).one() == 1


async def approved_draft(client: httpx.AsyncClient, people: dict[str, Headers]) -> str:
    draft = await new_draft(client, people["agent"], CLEAN)
    url = f"/api/v1/drafts/{draft['id']}"
    await client.post(f"{url}/submit", headers=people["agent"])
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    response = await client.post(f"{url}/decisions", headers=people["comms"], json=approve)
    assert response.json()["status"] == "approved"
    return url


def outbox_messages(database: Database) -> list[OutboxMessage]:
    with database.read_session() as session:
        return list(session.exec(select(OutboxMessage)).all())


async def test_a_publisher_posts_an_approved_reply_once(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    url = await approved_draft(client, people)
    assert (await client.post(f"{url}/publish", headers=people["comms"])).status_code == 403
    published = await client.post(f"{url}/publish", headers=people["pub"])
    assert published.status_code == 200, published.text
    detail = published.json()
    assert detail["status"] == "published"
    assert detail["publication"]["status"] == "confirmed"
    assert detail["publication"]["external_id"].startswith("outbox-")
    assert [m.body for m in outbox_messages(database)] == [CLEAN]
    again = await client.post(f"{url}/publish", headers=people["pub"])
    assert again.status_code == 409
    assert len(outbox_messages(database)) == 1
    post = await client.get(f"/api/v1/posts/{detail['post_id']}", headers=people["agent"])
    assert post.json()["status"] == "answered"
    with database.read_session() as session:
        assert audit.verify(session).ok


async def test_the_author_never_publishes_their_own_reply(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    draft = await new_draft(client, people["agentpub"], CLEAN)
    url = f"/api/v1/drafts/{draft['id']}"
    await client.post(f"{url}/submit", headers=people["agentpub"])
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    await client.post(f"{url}/decisions", headers=people["comms"], json=approve)
    refused = await client.post(f"{url}/publish", headers=people["agentpub"])
    assert refused.status_code == 403 and "author" in refused.json()["detail"]


async def test_scheduled_publishing_waits_and_withdraw_cancels_it(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    soon, later = await approved_draft(client, people), await approved_draft(client, people)
    at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    scheduled = await client.post(f"{soon}/publish", headers=people["pub"], json={"at": at})
    assert scheduled.json()["status"] == "scheduled"
    assert outbox_messages(database) == []
    far = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    await client.post(f"{later}/publish", headers=people["pub"], json={"at": far})
    withdrawn = await client.post(f"{later}/withdraw", headers=people["boss"])
    assert withdrawn.json()["status"] == "withdrawn"
    for _ in range(100):
        if (await client.get(soon, headers=people["pub"])).json()["status"] == "published":
            break
        await asyncio.sleep(0.1)
    assert (await client.get(soon, headers=people["pub"])).json()["status"] == "published"
    assert len(outbox_messages(database)) == 1  # only the one that was not withdrawn
