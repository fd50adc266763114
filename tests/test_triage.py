"""Triage on arrival (issue 23, item 1): every new post is triaged by the rule set in force
as it is stored, by whatever route (a person's `POST /posts`, a poller's batch), and keeps
what triage found and why; a public-risk post alerts comms and the supervisors once; the
queue filters by it; a rule set's `triage` section that is wrong is refused with its line.
Both databases; no Temporal needed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from lifecycle.words import Role
from policies import triage
from policies.engine import RuleSet, RuleSetError
from policies.versions import RuleBook
from records import posts
from records.audit_models import AuditEvent
from records.db import Database
from records.ingest import store
from records.notification_models import Notification
from records.post_models import PostCreate

Headers = dict[str, str]
T0 = datetime.now(UTC) - timedelta(hours=1)
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def people(make_user: Callable[..., str], login: Callable[..., Headers]) -> dict[str, Headers]:
    for name, role in (
        ("agent", Role.agent), ("comms", Role.comms), ("boss", Role.supervisor),
        ("legal", Role.legal), ("admin", Role.admin),
    ):  # fmt: skip
        make_user(name, role)
    return {name: login(name) for name in ("agent", "admin")}


def body(n: int, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "channel": "x", "external_id": f"t-{n}", "author": f"@c{n}", "text": text,
        "url": f"https://x.example/{n}", "received_at": (T0 + timedelta(seconds=n)).isoformat(),
        **extra,
    }  # fmt: skip


def ingest(client: TestClient, who: Headers, n: int, text: str, **extra: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/posts", json=body(n, text, **extra), headers=who)
    assert answer.status_code == 201, answer.text
    post: dict[str, Any] = answer.json()
    return post


def test_a_post_is_triaged_as_it_arrives_and_says_why(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    fraud = ingest(
        app_client,
        people["agent"],
        1,
        "@AcmeBank there are payments on my card I didn't make, please block it",
    )
    assert (fraud["priority"], fraud["topic"], fraud["language"]) == ("urgent", "fraud", "en")
    assert fraud["spam"] is None and fraud["public_risk"] is False
    assert any(r.startswith("topic fraud") for r in fraud["triage"])
    assert any(r.startswith("priority urgent by rule") for r in fraud["triage"])
    spanish = ingest(
        app_client,
        people["agent"],
        2,
        "@AcmeBank me cobraron dos veces la comisión, quiero el reembolso",
    )
    assert (spanish["language"], spanish["topic"], spanish["sentiment"]) == ("es", "billing", None)
    assert "sentiment not scored (VADER reads English)" in spanish["triage"]
    praise = ingest(app_client, people["agent"], 3, "Thanks @AcmeBank, lovely service today!")
    assert (praise["priority"], praise["topic"]) == ("low", "praise")
    assert praise["sentiment"] > 0.35
    spam = ingest(app_client, people["agent"], 4, "https://bit.ly/x #AcmeBank @AcmeBank")
    assert (spam["priority"], spam["spam"]) == ("low", "links_only")
    # The audit record says what triage decided for each post.
    with database.read_session() as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "post.received").order_by(AuditEvent.seq)
        ).all()
    first = json.loads(events[0].payload)
    assert (first["priority"], first["topic"], first["public_risk"]) == ("urgent", "fraud", False)


def test_a_source_may_say_more_urgent_never_less(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    louder = ingest(
        app_client, people["agent"], 1, "What time does the Leeds branch open?", priority="urgent"
    )
    assert louder["priority"] == "urgent"
    assert louder["triage"][-1] == "priority urgent: as the source said"
    quieter = ingest(
        app_client, people["agent"], 2, "@AcmeBank someone stole my card", priority="low"
    )
    assert quieter["priority"] == "urgent"


def test_a_public_risk_post_alerts_comms_and_supervisors_once(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    risky = ingest(
        app_client,
        people["agent"],
        1,
        "@AcmeBank three weeks and no refund. My lawyer will be in touch.",
    )
    assert risky["public_risk"] is True and risky["priority"] == "urgent"
    assert any(r.startswith("public risk: legal words") for r in risky["triage"])
    # The same post again (another route, a retried batch) alerts no one again.
    again = app_client.post("/api/v1/posts", json=body(1, "edited"), headers=people["agent"])
    assert again.status_code == 200
    with database.read_session() as session:
        alerts = session.exec(select(Notification).where(Notification.event == "public_risk")).all()
    assert sorted(a.recipient for a in alerts) == ["boss", "comms"]
    assert {a.post_id for a in alerts} == {risky["id"]}
    # High reach and negative is a public risk too, whatever the words.
    loud = store_one(
        database, 2, "This bank is a disgrace, worst service I have ever had", followers=250_000
    )
    assert loud["public_risk"] is True


def store_one(database: Database, n: int, text: str, **profile: Any) -> dict[str, Any]:
    """A post as a poller stores it (with the author's profile a connector gives)."""
    data = PostCreate.model_validate(
        body(n, text, origin="mention", author_profile={"id": f"u{n}", **profile})
    )
    with database.write_session() as session:
        [stored] = store(session, [data], rules=RuleBook(), actor="poller:t", actor_role="x")
    return post_row(database, stored.post_id)


def post_row(database: Database, post_id: int) -> dict[str, Any]:
    with database.read_session() as session:
        return posts.to_public(posts.get(session, post_id)).model_dump()


def test_the_same_link_again_is_spam_but_a_customer_may_ask_again_and_again(
    database: Database,
) -> None:
    ask = "@AcmeBank hello? anyone there?"
    link = "@AcmeBank earn from home today https://spam.example/x"
    posts = [
        PostCreate.model_validate(
            body(n, text, author="@same", author_profile={"id": "same-1"}, origin="mention")
        )
        for n, text in enumerate([ask, ask, ask, link, ask, link, ask])
    ]
    with database.write_session() as session:
        first = store(session, posts[:4], rules=RuleBook(), actor="poller:t", actor_role="x")
    with database.write_session() as session:
        rest = store(session, posts[4:], rules=RuleBook(), actor="poller:t", actor_role="x")
    spam = [post_row(database, s.post_id)["spam"] for s in [*first, *rest]]
    # A customer left waiting asks four times and is heard; the fifth copy is spam, as is a
    # link sent a second time, across batches as within one.
    assert spam == [None, None, None, None, None, "repeated", "repeated"]


def test_a_new_account_posting_a_link_is_spam(database: Database) -> None:
    post = store_one(
        database,
        1,
        "@AcmeBank great rates here https://deal.example",
        joined_at=(T0 - timedelta(days=3)).isoformat(),
    )
    assert post["spam"] == "new_account_link"
    old = store_one(
        database,
        2,
        "@AcmeBank your rates vs https://deal.example ?",
        joined_at=(T0 - timedelta(days=900)).isoformat(),
    )
    assert old["spam"] is None


def test_the_queue_filters_by_topic_language_and_public_risk(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    ingest(app_client, people["agent"], 1, "@AcmeBank someone used my card in Leeds, not me")
    ingest(app_client, people["agent"], 2, "@AcmeBank mi tarjeta nueva no ha llegado todavía")
    ingest(app_client, people["agent"], 3, "@AcmeBank I am taking you to court over these fees")

    def ids(**filters: str) -> list[str]:
        answer = app_client.get("/api/v1/posts", params=filters, headers=people["agent"])
        assert answer.status_code == 200, answer.text
        return [p["external_id"] for p in answer.json()["items"]]

    assert ids(topic="fraud") == ["t-1"]
    assert ids(language="es") == ["t-2"]
    assert ids(public_risk="true") == ["t-3"]
    assert ids(public_risk="false") == ["t-1", "t-2"]
    bad = app_client.get("/api/v1/posts", params={"language": "Spanish"}, headers=people["agent"])
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_an_uploaded_triage_section_decides_from_then_on(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    shipped = ingest(app_client, people["agent"], 1, "@AcmeBank my mortgage rate went up")
    assert shipped["topic"] is None
    # The shipped file, with a topic of its own in front.
    rules = RuleSet.load().source.replace(
        "  topics:                    # the first topic listed whose terms the post holds wins\n",
        "  topics:                    # the first topic listed whose terms the post holds wins\n"
        "    - topic: mortgage\n      terms: [mortgage, remortgage]\n",
    )
    assert "topic: mortgage" in rules
    answer = app_client.put("/api/v1/policies", headers={**people["admin"], **YAML}, content=rules)
    assert answer.status_code == 200, answer.text
    now = ingest(app_client, people["agent"], 2, "@AcmeBank my mortgage rate went up")
    assert now["topic"] == "mortgage"


BASE = "name: t\nroutes:\n  base: [comms]\n"


@pytest.mark.parametrize(
    "section, line, problem",
    [
        ("triage:\n  colour: red\n", 5, "triage.colour is not a known setting"),
        ("triage:\n  languages: [en, klingon]\n", 5, "not an ISO 639-1 code"),
        ("triage:\n  sentiment: {negative: 0.5, positive: 0.2}\n", 5, "must be below positive"),
        ("triage:\n  default: asap\n", 5, "not one of urgent, high, normal, low"),
        (
            "triage:\n  topics:\n    - {topic: a, terms: [x]}\n    - {topic: a, terms: [y]}\n",
            7,
            "'a' is listed twice",
        ),
        (
            "triage:\n  priority:\n    - {priority: high, when: {topic: fraud}}\n",
            6,
            "is 'fraud', not one of",
        ),
        ("triage:\n  priority:\n    - {priority: high, when: {}}\n", 6, "at least one condition"),
        (
            "triage:\n  priority:\n    - {priority: high, when: {mood: grumpy}}\n",
            6,
            "not one of negative, neutral, positive",
        ),
    ],
)
def test_a_wrong_triage_section_is_refused_with_its_line(
    section: str, line: int, problem: str
) -> None:
    with pytest.raises(RuleSetError) as refused:
        RuleSet(BASE + section)
    assert problem in refused.value.problem
    assert refused.value.line == line


def test_a_scam_quoted_in_a_report_is_not_spam() -> None:
    """Spam words a customer quotes, or uses reporting fraud, do not dismiss the post; the
    same words sent as they are do."""
    rules = RuleSet.load().triage
    at = datetime(2026, 11, 30, tzinfo=UTC)

    def spam(text: str) -> str | None:
        found = triage.triage(rules, text, origin="mention", author=triage.Author(), at=at)
        return found.spam.value if found.spam else None

    assert spam("Win big! click here for your crypto giveaway") == "spam_term"
    assert spam("Got a text: 'your card is blocked, click here' - is that you?") is None
    assert spam("I was scammed by a crypto giveaway, my savings are gone") is None
