"""Submit uses the policy engine end to end: through the API, the workflow and its activity,
with the real dev server and both databases."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlmodel import select

from records.audit_models import AuditEvent
from records.db import Database
from tests.conftest import Headers
from tests.helpers import new_post

pytestmark = pytest.mark.temporal
FEE = {"name": "Sam", "fee": "overdraft fee", "days": 3}


async def draft_for(
    client: httpx.AsyncClient, agent: Headers, post_text: str, **payload: object
) -> str:
    post_id = await new_post(client, agent, post_text)
    response = await client.post(
        "/api/v1/drafts", headers=agent, json={"post_id": post_id, **payload}
    )
    assert response.status_code == 201, response.text
    return f"/api/v1/drafts/{response.json()['id']}"


def submitted_event(database: Database, draft_id: int) -> dict[str, object]:
    with database.read_session() as session:
        events = session.exec(
            select(AuditEvent).where(
                AuditEvent.draft_id == draft_id, AuditEvent.action == "draft.submitted"
            )
        ).all()
    payload: dict[str, object] = json.loads(events[-1].payload)
    return payload


async def test_a_card_number_is_refused_with_a_masked_finding(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    url = await draft_for(
        client, people["agent"], "Why was I charged?", body="Is 4111 1111 1111 1111 your card?"
    )
    refused = await client.post(f"{url}/submit", headers=people["agent"])
    assert refused.status_code == 422
    [finding] = refused.json()["findings"]
    assert (finding["rule_id"], finding["severity"]) == ("pii.card", "block")
    assert "4111 1111 1111 1111" not in refused.text
    draft = (await client.get(url, headers=people["agent"])).json()
    assert draft["status"] == "draft" and draft["findings"][0]["excerpt"].endswith("1111")
    assert "4111 1111 1111 1111" not in json.dumps(draft["findings"])


async def test_an_admission_of_fault_routes_to_legal(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    url = await draft_for(
        client, people["agent"], "You charged me twice!", body="Sorry, this was our fault."
    )
    submitted = (await client.post(f"{url}/submit", headers=people["agent"])).json()
    assert (submitted["status"], submitted["stage"], submitted["route"]) == (
        "in_review",
        "comms",
        ["comms", "legal"],
    )
    assert submitted["findings"][0]["rule_id"] == "lexicon.legal_risk.our-fault"
    event = submitted_event(database, submitted["id"])
    assert event["ruleset_version"] == submitted["ruleset_version"]


async def test_a_post_that_mentions_a_lawyer_routes_to_legal(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    url = await draft_for(
        client,
        people["agent"],
        "My lawyer says you owe me.",
        body="Sorry to hear this. Please send us a direct message.",
    )
    submitted = (await client.post(f"{url}/submit", headers=people["agent"])).json()
    assert submitted["route"] == ["comms", "legal"] and submitted["findings"] == []


async def test_a_template_draft_records_its_template_and_skips_what_it_may(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    url = await draft_for(
        client, people["agent"], "Why the overdraft fee?", template_id="fee-refund", variables=FEE
    )
    draft = (await client.get(url, headers=people["agent"])).json()
    assert draft["template_id"] == "fee-refund" and draft["template_version"]
    assert draft["body"].startswith("Hi Sam, we have looked into the overdraft fee")
    submitted = (await client.post(f"{url}/submit", headers=people["agent"])).json()
    # "full refund" is in the template legal approved: only comms reviews this reply.
    assert submitted["route"] == ["comms"]
    assert "lexicon.financial_promise.full-refund" in [f["rule_id"] for f in submitted["findings"]]
    event = submitted_event(database, submitted["id"])
    assert event["template"] == {
        "id": "fee-refund",
        "version": draft["template_version"],
        "use": "pre_approved",
        "skipped": ["legal"],
    }


async def test_edits_beyond_the_allowed_distance_make_it_free_text(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    url = await draft_for(
        client, people["agent"], "Why the overdraft fee?", template_id="fee-refund", variables=FEE
    )
    draft = (await client.get(url, headers=people["agent"])).json()
    longer = draft["body"] + " We are also reviewing every other fee on your account."
    edited = await client.put(
        url, headers=people["agent"], json={"body": longer, "expected_version": 1}
    )
    assert edited.status_code == 200, edited.text
    submitted = (await client.post(f"{url}/submit", headers=people["agent"])).json()
    assert submitted["route"] == ["comms", "legal"]


async def test_a_template_draft_is_refused_when_it_does_not_fit(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    post_id = await new_post(client, people["agent"], "Hello?")
    for payload, status, problem in (
        ({"template_id": "fee-refund", "variables": {"name": "Sam"}}, 422, "fee: required"),
        ({"template_id": "nope", "variables": {}}, 404, "no template"),
        ({"template_id": "fee-refund", "body": "both"}, 422, "not both"),
        ({}, 422, "either body or template_id"),
    ):
        response = await client.post(
            "/api/v1/drafts", headers=people["agent"], json={"post_id": post_id, **payload}
        )
        assert (response.status_code, problem in response.text) == (status, True), response.text
    drafts = await client.get("/api/v1/drafts", headers=people["agent"])
    assert drafts.json()["items"] == []


async def test_a_submit_check_over_its_budget_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
    people: dict[str, Headers],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's check runs under the same budget as the API's: over it, the submit is
    a 422 that says so (not retried, not a stall) and the draft stays a draft. The same
    request gets the same answer (it is the same update); the shortened text is checked."""
    from policies import budget

    url = await draft_for(client, people["agent"], "Where is my card?", body="It is on its way.")
    monkeypatch.setattr(budget, "CHECK_BUDGET_SECONDS", 0.0)
    refused = await client.post(f"{url}/submit", headers=people["agent"])
    assert refused.status_code == 422, refused.text
    assert "over its budget" in refused.json()["detail"]
    monkeypatch.undo()
    draft = (await client.get(url, headers=people["agent"])).json()
    assert (draft["status"], draft["findings"]) == ("draft", [])
    edited = await client.put(
        url, headers=people["agent"], json={"body": "On its way.", "expected_version": 1}
    )
    assert edited.status_code == 200, edited.text
    submitted = await client.post(f"{url}/submit", headers=people["agent"])
    assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"
