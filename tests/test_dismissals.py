"""Dismissal with a reason (issue 23, item 2): a post that needs no reply is dismissed by an
agent (theirs or no one's) or a supervisor (any), never with an open draft; it takes no
draft while dismissed; only a supervisor restores it; triage dismisses spam as it arrives;
each is an audit event and the KPIs count them by reason. A dismissal and a draft at the
same moment: exactly one wins. Both databases; no Temporal needed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from lifecycle.words import CHOSEN_DISMISS_REASONS, DismissReason, Role
from records import dismissals, drafts
from records.audit_models import AuditEvent
from records.db import Database
from records.errors import Conflict
from tests.test_web import csrf_of, sign_in

Headers = dict[str, str]
T0 = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def people(make_user: Callable[..., str], login: Callable[..., Headers]) -> dict[str, Headers]:
    for name, role in (("ann", Role.agent), ("bob", Role.agent), ("sue", Role.supervisor)):
        make_user(name, role)
    return {name: login(name) for name in ("ann", "bob", "sue")}


def new_post(client: TestClient, who: Headers, n: int, text: str = "When do you open?") -> int:
    body = {
        "channel": "x", "external_id": f"d-{n}", "author": f"@c{n}", "text": text,
        "url": f"https://x.example/{n}", "received_at": (T0 + timedelta(seconds=n)).isoformat(),
    }  # fmt: skip
    answer = client.post("/api/v1/posts", json=body, headers=who)
    assert answer.status_code == 201, answer.text
    post_id: int = answer.json()["id"]
    return post_id


def act(client: TestClient, who: Headers, post_id: int, action: str, **body: Any) -> Any:
    return client.post(f"/api/v1/posts/{post_id}/{action}", json=body or None, headers=who)


def test_a_dismissal_keeps_its_reason_takes_no_draft_and_a_supervisor_restores_it(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    post = new_post(app_client, people["ann"], 1)
    dismissed = act(app_client, people["ann"], post, "dismiss", reason="off_topic", note="a bot")
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["status"] == "dismissed"
    assert (dismissed.json()["dismissed_reason"], dismissed.json()["dismissed_by"]) == (
        "off_topic", "ann",
    )  # fmt: skip
    # Out of the queue of posts waiting, in the dismissed one.
    waiting = app_client.get("/api/v1/posts", params={"status": "new"}, headers=people["ann"])
    assert post not in [p["id"] for p in waiting.json()["items"]]
    gone = app_client.get("/api/v1/posts", params={"status": "dismissed"}, headers=people["sue"])
    assert [p["id"] for p in gone.json()["items"]] == [post]
    # A dismissed post takes no draft, and is not dismissed twice.
    draft = app_client.post("/api/v1/drafts", json={"post_id": post, "body": "Hi"},
                            headers=people["ann"])  # fmt: skip
    assert draft.status_code == 409
    assert "dismissed" in draft.json()["detail"]
    assert act(app_client, people["ann"], post, "dismiss", reason="spam").status_code == 409
    # Only a supervisor restores it.
    assert act(app_client, people["ann"], post, "restore").status_code == 403
    restored = act(app_client, people["sue"], post, "restore")
    assert restored.status_code == 200, restored.text
    assert (restored.json()["status"], restored.json()["dismissed_reason"]) == ("new", None)
    with database.read_session() as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action.in_(["post.dismissed", "post.restored"]))
            .order_by(AuditEvent.seq)
        ).all()  # fmt: skip
    assert [(e.action, e.actor) for e in events] == [
        ("post.dismissed", "ann"), ("post.restored", "sue"),
    ]  # fmt: skip
    assert json.loads(events[0].payload) == {
        "post_id": post,
        "reason": "off_topic",
        "note": "a bot",
    }


def test_who_may_dismiss_what(app_client: TestClient, people: dict[str, Headers]) -> None:
    post = new_post(app_client, people["ann"], 1)
    assert act(app_client, people["ann"], post, "assign").status_code == 200
    # Bob may not dismiss Ann's post; the supervisor may.
    refused = act(app_client, people["bob"], post, "dismiss", reason="duplicate")
    assert refused.status_code == 403
    assert "assigned to ann" in refused.json()["detail"]
    assert act(app_client, people["sue"], post, "dismiss", reason="duplicate").status_code == 200
    # A reason is one of the list; a note has no NUL.
    other = new_post(app_client, people["ann"], 2)
    bad = act(app_client, people["ann"], other, "dismiss", reason="boring")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    bad_note = act(app_client, people["ann"], other, "dismiss", reason="spam", note="a\x00b")
    assert bad_note.status_code == 422
    # Restoring an assigned post gives it back to its agent.
    restored = act(app_client, people["sue"], post, "restore")
    assert (restored.json()["status"], restored.json()["assignee"]) == ("assigned", "ann")


def test_a_post_with_an_open_draft_is_not_dismissed(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    post = new_post(app_client, people["ann"], 1)
    with database.write() as connection:  # the draft's row, as `POST /drafts` makes it
        drafts.create(connection, post_id=post, author="ann", body="We open at 9.")
    refused = act(app_client, people["sue"], post, "dismiss", reason="handled_elsewhere")
    assert refused.status_code == 409
    assert "open draft" in refused.json()["detail"]


def test_triage_dismisses_spam_as_it_arrives_and_the_kpis_count_it(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    spam = new_post(app_client, people["ann"], 1, "https://bit.ly/x #AcmeBank @AcmeBank")
    kept = new_post(app_client, people["ann"], 2)
    got = app_client.get(f"/api/v1/posts/{spam}", headers=people["ann"]).json()
    assert (got["status"], got["dismissed_reason"], got["dismissed_by"]) == (
        "dismissed", "spam", "triage",
    )  # fmt: skip
    assert got["dismissed_note"].startswith("spam: nothing but links")
    assert act(app_client, people["ann"], kept, "dismiss", reason="praise_acknowledged").is_success
    kpis = app_client.get("/api/v1/reports/kpis", headers=people["sue"])
    assert kpis.status_code == 200, kpis.text
    figures = kpis.json()["dismissals"]
    assert figures["total"] == 2 and figures["by_triage"] == 1
    assert figures["by_reason"]["spam"] == 1 and figures["by_reason"]["praise_acknowledged"] == 1
    with database.read_session() as session:
        [event] = session.exec(
            select(AuditEvent).where(AuditEvent.action == "post.dismissed")
            .order_by(AuditEvent.seq).limit(1)
        ).all()  # fmt: skip
    assert (event.actor, json.loads(event.payload)["reason"]) == ("triage", "spam")


@pytest.mark.parametrize("attempt", range(3))
def test_a_dismissal_and_a_draft_at_the_same_moment_one_wins(
    attempt: int, app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    """Two threads, one dismissing and one drafting the same post, each in its own
    transaction: never a dismissed post with an open draft."""
    post = new_post(app_client, people["ann"], 10 + attempt)
    start = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def dismiss() -> None:
        start.wait()
        try:
            with database.write() as connection:
                dismissals.dismiss(connection, post, DismissReason.duplicate, None,
                                   actor="sue", supervising=True)  # fmt: skip
            outcome["dismiss"] = "won"
        except Conflict:
            outcome["dismiss"] = "refused"

    def draft() -> None:
        start.wait()
        try:
            with database.write() as connection:
                drafts.create(connection, post_id=post, author="ann", body="Hello")
            outcome["draft"] = "won"
        except Conflict:
            outcome["draft"] = "refused"

    threads = [threading.Thread(target=dismiss), threading.Thread(target=draft)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcome.values()) == ["refused", "won"], outcome
    got = app_client.get(f"/api/v1/posts/{post}", headers=people["sue"]).json()
    open_drafts = app_client.get("/api/v1/drafts", params={"post_id": post},
                                 headers=people["sue"]).json()["items"]  # fmt: skip
    assert (got["status"] == "dismissed") != bool(open_drafts)


def test_in_the_browser_a_supervisor_is_alerted_dismisses_and_restores(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    """The pages: the public-risk alert on the notifications page, the inbox's dismissal
    with a reason, the dismissed list, and restore."""
    risky = new_post(app_client, people["ann"], 1, "@AcmeBank my lawyer will hear about this")
    calm = new_post(app_client, people["ann"], 2, "@AcmeBank thanks, all sorted now!")
    app_client.cookies.clear()
    sign_in(app_client, "sue")
    alerts = app_client.get("/notifications")
    assert alerts.status_code == 200
    assert "public risk" in alerts.text and f"post {risky}" in alerts.text
    inbox = app_client.get("/inbox")
    assert f'action="/posts/{calm}/dismiss"' in inbox.text
    answer = app_client.post(
        f"/posts/{calm}/dismiss",
        data={"reason": "praise_acknowledged", "note": "", "csrf_token": csrf_of(inbox.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    dismissed = app_client.get("/inbox", params={"status": "dismissed"})
    assert "dismissed: praise acknowledged by sue" in dismissed.text
    assert f'action="/posts/{calm}/restore"' in dismissed.text
    restored = app_client.post(
        f"/posts/{calm}/restore", data={"csrf_token": csrf_of(dismissed.text)},
        follow_redirects=False,
    )  # fmt: skip
    assert restored.status_code == 303
    assert f'action="/posts/{calm}/dismiss"' in app_client.get("/inbox").text


def test_an_erased_customers_waiting_posts_are_dismissed_for_good(
    app_client: TestClient,
    people: dict[str, Headers],
    make_user: Callable[..., str],
    login: Callable[..., Headers],
) -> None:
    """The erasure dismisses the customer's posts still waiting (nobody is left to answer),
    with a reason of its own that nobody else may give, and no supervisor restores them."""
    make_user("adm", Role.admin)
    waiting, other = new_post(app_client, people["ann"], 1), new_post(app_client, people["ann"], 2)
    erased = app_client.post(
        "/api/v1/customers/erase", json={"author": "@c1"}, headers=login("adm")
    )
    assert erased.status_code == 200 and erased.json()["dismissed"] == 1, erased.text
    post = app_client.get(f"/api/v1/posts/{waiting}", headers=people["sue"]).json()
    assert (post["status"], post["dismissed_reason"]) == ("dismissed", "erased")
    restore = act(app_client, people["sue"], waiting, "restore")
    assert restore.status_code == 409 and "erased" in restore.json()["detail"]
    chosen = act(app_client, people["ann"], other, "dismiss", reason="erased")
    assert chosen.status_code == 422 and "choose one of" in chosen.text
    documented = app_client.get("/openapi.json").json()["components"]["schemas"]["PostDismiss"]
    assert documented["properties"]["reason"]["enum"] == list(CHOSEN_DISMISS_REASONS)
    app_client.cookies.clear()
    sign_in(app_client, "ann")
    inbox = app_client.get("/inbox").text
    assert f'action="/posts/{other}/dismiss"' in inbox  # its reasons are offered
    assert 'value="spam"' in inbox and 'value="erased"' not in inbox
    app_client.cookies.clear()
    sign_in(app_client, "sue")
    dismissed = app_client.get("/inbox", params={"status": "dismissed"}).text
    assert "dismissed: erased" in dismissed  # shown, and not offered back
    assert f'action="/posts/{waiting}/restore"' not in dismissed
