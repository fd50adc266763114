"""The policies and templates over HTTP: dry-run checks, the active rule set, uploads
(a bad one refused with its line, leaving the active one in force), templates rendered in
the sandbox and checked like any reply. Both databases; no Temporal needed."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from lifecycle.words import Role
from policies.engine import RuleSet
from records.audit_models import AuditEvent
from records.db import Database

Headers = dict[str, str]
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def people(make_user: Callable[..., str], login: Callable[..., Headers]) -> dict[str, Headers]:
    make_user("agent", Role.agent)
    make_user("admin", Role.admin)
    return {"agent": login("agent"), "admin": login("admin")}


def check(client: TestClient, who: Headers, body: str, **extra: object) -> dict[str, object]:
    response = client.post(
        "/api/v1/policies/check", headers=who, json={"body": body, "channel": "x", **extra}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_a_dry_run_shows_findings_and_route(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    clean = check(app_client, people["agent"], "Thanks, we have sent you a direct message.")
    assert (clean["findings"], clean["route"], clean["blocked"]) == ([], ["comms"], False)
    card = check(app_client, people["agent"], "Is 4111 1111 1111 1111 your card?")
    assert card["blocked"] is True
    [finding] = card["findings"]  # type: ignore[misc]
    assert finding["rule_id"] == "pii.card"
    assert finding["excerpt"].endswith("1111") and "4111" not in finding["excerpt"]
    assert finding["ruleset_version"] == RuleSet.load().version
    assert set(finding) >= {"rule_id", "category", "severity", "start", "end", "message"}
    fault = check(app_client, people["agent"], "Sorry, our fault.", post_text="I want a lawyer")
    assert fault["route"] == ["comms", "legal"]


def test_a_dry_run_takes_the_channel_and_text_of_a_post(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    post = app_client.post(
        "/api/v1/posts",
        headers=people["agent"],
        json={
            "channel": "bluesky",
            "external_id": "b-1",
            "author": "@c.bsky.social",
            "text": "My attorney will be in touch",
            "url": "https://bsky.app/x",
            "received_at": "2026-11-22T09:00:00Z",
        },
    ).json()
    response = app_client.post(
        "/api/v1/policies/check",
        headers=people["agent"],
        json={"body": "a" * 301, "post_id": post["id"]},
    ).json()
    assert [f["rule_id"] for f in response["findings"]] == ["channel.bluesky.length"]
    assert response["route"] == ["comms", "legal"]


@pytest.mark.parametrize(
    "payload, problem",
    [
        ({"body": "hi"}, "channel or post_id"),
        ({"body": "hi", "channel": "myspace"}, "channel"),
        ({"body": "hi", "channel": "x", "extra": 1}, "extra"),
        ({"body": "hi", "post_id": 999}, "no post"),
    ],
)
def test_a_bad_dry_run_is_a_clear_problem(
    app_client: TestClient, people: dict[str, Headers], payload: dict[str, object], problem: str
) -> None:
    response = app_client.post("/api/v1/policies/check", headers=people["agent"], json=payload)
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == "application/problem+json"
    assert problem in response.text


def test_the_active_rule_set_and_its_summary(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    active = app_client.get("/api/v1/policies", headers=people["agent"]).json()
    assert (active["source"], active["version"]) == ("shipped", RuleSet.load().version)
    assert active["summary"]["lexicon"]["legal_risk"]["route:legal"] > 10
    source = app_client.get("/api/v1/policies/source", headers=people["admin"])
    assert source.text == RuleSet.load().source
    assert app_client.get("/api/v1/policies/source", headers=people["agent"]).status_code == 403


BASE = "name: t\nroutes: {base: [comms]}\n"
NEW_RULES = """name: stricter
routes: {base: [comms]}
lexicon:
  - category: legal_risk
    severity: route:legal
    terms: [sorry]
"""


def test_an_admin_uploads_a_rule_set_which_then_decides(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    assert check(app_client, people["agent"], "So sorry!")["route"] == ["comms"]
    response = app_client.put(
        "/api/v1/policies", headers={**people["admin"], **YAML}, content=NEW_RULES
    )
    assert response.status_code == 200, response.text
    active = response.json()
    assert (active["name"], active["source"], active["uploaded_by"]) == (
        "stricter",
        "uploaded",
        "admin",
    )
    answer = check(app_client, people["agent"], "So sorry!")
    assert answer["route"] == ["comms", "legal"]
    assert answer["ruleset_version"] == RuleSet(NEW_RULES).version
    with database.read_session() as session:
        [event] = session.exec(
            select(AuditEvent).where(AuditEvent.action == "policy.activated")
        ).all()
    assert json.loads(event.payload)["version"] == RuleSet(NEW_RULES).version
    assert (event.actor, event.role) == ("admin", "admin")


@pytest.mark.parametrize(
    "source, line, problem",
    [
        (BASE + "lexicon:\n  - {category: c, severity: nope, terms: [a]}", 4, "nope"),
        ("name: t\nroutes:\n  base: [comms\n", 4, "YAML"),
        (BASE + "channels:\n  x: {max_length: lots}\n", 4, "max_length"),
    ],
)
def test_a_bad_upload_names_the_line_and_leaves_the_active_rule_set(
    app_client: TestClient, people: dict[str, Headers], source: str, line: int, problem: str
) -> None:
    app_client.put("/api/v1/policies", headers={**people["admin"], **YAML}, content=NEW_RULES)
    before = app_client.get("/api/v1/policies", headers=people["agent"]).json()
    response = app_client.put(
        "/api/v1/policies", headers={**people["admin"], **YAML}, content=source
    )
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["line"] == line and problem in body["errors"][0]["msg"]
    assert f"line {line}" in body["detail"]
    assert app_client.get("/api/v1/policies", headers=people["agent"]).json() == before
    assert check(app_client, people["agent"], "So sorry!")["route"] == ["comms", "legal"]


def test_only_an_admin_uploads_and_only_yaml(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    as_agent = {**people["agent"], **YAML}
    assert (
        app_client.put("/api/v1/policies", headers=as_agent, content=NEW_RULES).status_code == 403
    )
    as_json = app_client.put("/api/v1/policies", headers=people["admin"], json={"a": 1})
    assert as_json.status_code == 415 and "application/yaml" in as_json.text


def render(
    client: TestClient, who: Headers, template_id: str, variables: dict[str, object], **extra: str
) -> httpx.Response:
    return client.post(
        f"/api/v1/templates/{template_id}/render",
        headers=who,
        json={"variables": variables, **extra},
    )


def test_templates_are_listed_and_rendered_in_the_sandbox(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    listed = app_client.get("/api/v1/templates?channel=x", headers=people["agent"]).json()
    ids = {t["id"] for t in listed["items"]}
    assert {"duplicate-charge", "fee-refund", "service-outage"} <= ids
    fee = next(t for t in listed["items"] if t["id"] == "fee-refund")
    assert {v["name"] for v in fee["variables"]} == {"name", "fee", "days"}
    fee_values = {"name": "Sam", "fee": "overdraft fee", "days": 3}
    rendered = render(app_client, people["agent"], "fee-refund", fee_values, channel="x").json()
    assert rendered["body"].startswith("Hi Sam, we have looked into the overdraft fee")
    assert rendered["body"][slice(*rendered["variable_spans"][0])] == "Sam"
    # Its own "full refund" was approved by legal with the template: legal is skipped.
    assert (rendered["route"], rendered["skipped"], rendered["template"]) == (
        ["comms"],
        ["legal"],
        "pre_approved",
    )


@pytest.mark.parametrize(
    "variables, problem",
    [
        ({"name": "Sam"}, "fee: required"),
        ({"name": "Sam", "fee": "a bribe", "days": 3}, "must be one of"),
        ({"name": "Sam", "fee": "overdraft fee", "days": 99}, "between 1 and 10"),
        ({"name": "Sam", "fee": "overdraft fee", "days": 3, "extra": "x"}, "not a variable"),
        ({"name": "x" * 41, "fee": "overdraft fee", "days": 3}, "at most 40"),
    ],
)
def test_variables_that_do_not_fit_are_refused(
    app_client: TestClient, people: dict[str, Headers], variables: dict[str, object], problem: str
) -> None:
    response = render(app_client, people["agent"], "fee-refund", variables)
    assert response.status_code == 422 and problem in response.text


def test_variable_values_go_through_the_checks(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    response = render(app_client, people["agent"], "move-to-dm", {"name": "you idiot"}).json()
    assert response["blocked"] is True
    assert [f["rule_id"] for f in response["findings"]] == ["lexicon.insults.idiot"]
    fault = render(app_client, people["agent"], "move-to-dm", {"name": "Sam, our fault"}).json()
    assert fault["route"] == ["comms", "legal"]  # what the agent typed is not pre-approved
    missing = render(app_client, people["agent"], "no-such", {})
    assert missing.status_code == 404
