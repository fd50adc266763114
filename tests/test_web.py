"""The web UI's sessions, CSRF protection and role checks, over HTTP without a browser
(tests/test_web_story.py drives Chromium through the whole story)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from lifecycle.words import Role
from records import drafts
from records.db import Database
from records.settings import Settings
from records.tables import DECISIONS, DRAFTS
from tests.conftest import PASSWORD
from tests.helpers import insert_post


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert found, "the page has no CSRF token"
    return found[1]


def sign_in(client: TestClient, username: str) -> None:
    form = client.get("/login")
    answer = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def agent_signed_in_with_a_post(
    client: TestClient, make_user: Callable[..., str], database: Database
) -> int:
    """Agent `ann`, signed in; the id of a new post she may answer."""
    make_user("ann", Role.agent)
    sign_in(client, "ann")
    with database.write() as c:
        return insert_post(c)


def test_a_visitor_is_sent_to_sign_in_and_back_with_a_strict_http_only_session(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    make_user("ann", Role.agent)
    away = app_client.get("/inbox?status=new", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=/inbox%3Fstatus%3Dnew"
    page = app_client.get(away.headers["location"])
    assert 'name="next" value="/inbox?status=new"' in page.text
    signed = app_client.post(
        "/login",
        data={
            "username": "ann",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "/inbox?status=new",
        },
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/inbox?status=new"
    cookie = signed.headers["set-cookie"]
    assert "countersign_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    inbox = app_client.get("/inbox")
    assert inbox.status_code == 200 and "ann" in inbox.text
    logout = app_client.post(
        "/logout", data={"csrf_token": csrf_of(inbox.text)}, follow_redirects=False
    )
    assert logout.status_code == 303
    assert app_client.get("/inbox", follow_redirects=False).status_code == 303


def test_a_wrong_password_shows_why_and_keeps_the_username(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    make_user("ann", Role.agent)
    page = app_client.get("/login")
    answer = app_client.post(
        "/login",
        data={"username": "ann", "password": "not it at all", "csrf_token": csrf_of(page.text)},
    )
    assert answer.status_code == 401
    assert "wrong username or password" in answer.text and 'value="ann"' in answer.text
    assert "countersign_session" not in answer.headers.get("set-cookie", "")


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    app_client: TestClient, make_user: Callable[..., str], database: Database
) -> None:
    post_id = agent_signed_in_with_a_post(app_client, make_user, database)
    for token in (None, "0" * 64):
        data = {"body": "Hello there"} | ({"csrf_token": token} if token else {})
        refused = app_client.post(f"/posts/{post_id}/reply", data=data)
        assert refused.status_code == 403 and "security token" in refused.text
    assert app_client.get("/drafts").text.count('href="/drafts/') == 0
    # A sign-in without one is refused too (no login CSRF).
    fresh = TestClient(app_client.app)
    bare = fresh.post("/login", data={"username": "ann", "password": PASSWORD})
    assert bare.status_code == 403


def test_navigation_follows_roles_and_a_hidden_action_posted_by_hand_is_refused(
    app_client: TestClient, make_user: Callable[..., str], database: Database
) -> None:
    make_user("ann", Role.agent)
    sign_in(app_client, "ann")
    with database.write() as c:
        draft_id = drafts.create(c, post_id=insert_post(c), author="ann", body="Hi").draft_id
    inbox = app_client.get("/inbox").text
    assert 'href="/drafts"' in inbox and 'href="/reviews"' not in inbox
    assert 'href="/audit"' not in inbox
    refused = app_client.post(
        f"/drafts/{draft_id}/decide",
        data={
            "csrf_token": csrf_of(inbox),
            "stage": "comms",
            "decision": "approve",
            "version": "1",
        },
    )
    assert refused.status_code == 403
    assert "deciding the comms stage needs the comms role" in refused.text
    assert app_client.get("/audit").status_code == 403


def test_the_start_page_depends_on_the_role(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    for name, role, home in (
        ("ann", Role.agent, "/inbox"),
        ("cat", Role.comms, "/reviews"),
        ("pat", Role.publisher, "/publishing"),
        ("aud", Role.auditor, "/audit"),
    ):
        make_user(name, role)
        client = TestClient(app_client.app)
        sign_in(client, name)
        assert client.get("/", follow_redirects=False).headers["location"] == home


def test_admins_add_people_change_roles_and_disable_them(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    make_user("root", Role.admin)
    sign_in(app_client, "root")
    page = app_client.get("/admin/users")
    assert page.status_code == 200 and "People and roles" in page.text
    token = csrf_of(page.text)
    short = app_client.post(
        "/admin/users",
        data={"csrf_token": token, "username": "newbie", "password": "short", "roles": "agent"},
    )
    assert short.status_code == 422 and 'value="newbie"' in short.text  # kept, with why
    assert "password" in short.text
    added = app_client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "newbie",
            "display_name": "New Bie",
            "password": "correct horse battery staple",
            "roles": ["agent", "publisher"],
        },
    )
    assert added.status_code == 200 and "newbie can now sign in." in added.text
    app_client.post(
        "/admin/users/newbie", data={"csrf_token": token, "action": "roles", "roles": "comms"}
    )
    disabled = app_client.post(
        "/admin/users/newbie", data={"csrf_token": token, "action": "disable"}
    )
    assert "newbie changed." in disabled.text
    row = disabled.text[disabled.text.index("<strong>newbie</strong>") :]
    row = row[: row.index("</tr>")]
    assert 'value="comms" checked' in row and 'value="agent" checked' not in row
    assert "disabled" in row and ">Enable<" in row
    newbie = TestClient(app_client.app)
    form = newbie.get("/login")
    refused = newbie.post(
        "/login",
        data={"username": "newbie", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert refused.status_code == 401


def test_admins_add_a_channel_account_whose_secrets_are_never_shown(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    make_user("root", Role.admin)
    sign_in(app_client, "root")
    token = csrf_of(app_client.get("/admin/channels").text)
    bad = app_client.post(
        "/admin/channels",
        data={
            "csrf_token": token,
            "name": "shop",
            "channel": "webhook",
            "source": "webhook",
            "settings": "reply_url https://shop.example/replies",
        },
    )
    assert bad.status_code == 422 and "settings, line 1: write name = value" in bad.text
    assert 'value="shop"' in bad.text
    secret = "shop-secret-0123456789abcdef"
    added = app_client.post(
        "/admin/channels",
        data={
            "csrf_token": token,
            "name": "shop",
            "channel": "webhook",
            "source": "webhook",
            "settings": "reply_url = https://shop.example/replies\n",
            "credentials": f"secret = {secret}",
        },
    )
    assert added.status_code == 200 and "Channel account shop added." in added.text
    assert "/api/v1/inbound/shop" in added.text and ">secret<" in added.text
    assert secret not in added.text


def test_admins_see_the_rule_file_and_a_bad_one_is_refused_with_its_line(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    make_user("root", Role.admin)
    sign_in(app_client, "root")
    page = app_client.get("/admin/rules")
    assert page.status_code == 200 and "lexicon:" in page.text and "(shipped" in page.text
    bad = app_client.post(
        "/admin/rules", data={"csrf_token": csrf_of(page.text), "source": "name: x\nlexicon: 3\n"}
    )
    assert bad.status_code == 422 and "line" in bad.text
    assert "lexicon: 3" in bad.text  # what was typed stays to be mended
    assert "(shipped" in app_client.get("/admin/rules").text


def test_supervisors_see_kpis_with_charts_and_a_csv(
    app_client: TestClient, make_user: Callable[..., str], database: Database
) -> None:
    make_user("boss", Role.supervisor)
    make_user("ann", Role.agent)
    with database.write() as c:
        insert_post(c, channel="x")
        insert_post(c, channel="mastodon")
    sign_in(app_client, "boss")
    page = app_client.get("/kpis")
    assert page.status_code == 200
    # The volumes and the topics; no decisions nor review times yet, and no staffing (the
    # posts are older than the four weeks a forecast reads).
    assert page.text.count("<svg") == 2
    assert page.text.count("No data in this window.") == 3
    assert "Posts received and replies published per day" in page.text
    assert "2026-11-01, received: 2" in page.text
    assert "2026-11-01, (no topic): 2" in page.text
    assert "Response rate" in page.text and "0 answered of 2 needing a reply" in page.text
    assert "Agents needed per hour, coming week" in page.text
    inverted = app_client.get("/kpis?since=2026-11-02T00:00&until=2026-11-01T00:00")
    assert inverted.status_code == 422 and "since must be before until" in inverted.text
    csv = app_client.get("/kpis.csv?channel=x")
    assert csv.headers["content-type"].startswith("text/csv") and "first_response" in csv.text
    sign_in(app_client, "ann")
    assert app_client.get("/kpis").status_code == 403


def test_audit_times_typed_in_the_page_are_read_as_utc_also_in_the_export(
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    make_user("aud", Role.auditor)  # its creation is the one event
    sign_in(app_client, "aud")
    since, until = "since=2020-01-01T00:00", "until=2020-01-02T00:00"
    before = app_client.get(f"/audit?{since}&{until}")
    assert before.status_code == 200 and "No events match." in before.text
    assert 'value="2020-01-01T00:00"' in before.text  # shown as typed
    now = app_client.get("/audit?since=2020-01-01T00:00")
    assert now.status_code == 200 and "user.created" in now.text
    assert "since=2020-01-01T00%3A00%3A00%2B00%3A00" in now.text  # the export asks in UTC
    export = app_client.get("/audit/export?format=jsonl&since=2020-01-01T00:00")
    assert export.status_code == 200 and '"action":"user.created"' in export.text.replace(" ", "")
    empty = app_client.get(f"/audit/export?format=jsonl&{since}&{until}")
    assert empty.status_code == 200 and empty.text.strip() == ""


def test_a_refused_reply_shows_why_and_keeps_what_was_typed(
    app_client: TestClient, make_user: Callable[..., str], database: Database
) -> None:
    post_id = agent_signed_in_with_a_post(app_client, make_user, database)
    form = app_client.get(f"/posts/{post_id}/reply")
    assert form.status_code == 200
    body = "Sorry for the wait. " * 501  # over the 10,000 characters a draft may hold
    refused = app_client.post(
        f"/posts/{post_id}/reply", data={"body": body, "csrf_token": csrf_of(form.text)}
    )
    assert refused.status_code == 422
    assert "10000" in refused.text and body.strip() in refused.text
    assert app_client.get("/drafts").text.count('href="/drafts/') == 0


def test_the_pages_offer_a_backup_supervisor_an_overdue_stage_and_nothing_before(
    settings: Settings, database: Database, make_user: Callable[..., str]
) -> None:
    """The draft page shows exactly the API's `allowed_actions`: a supervisor who backs up
    legal gets legal's decision form once legal is overdue, and not before. (A supervisor
    sees every stage's queue all along: README's roles, issue 21.)"""
    make_user("sue", Role.supervisor)
    with database.write() as c:
        post_id = insert_post(c)
        draft_id = drafts.create(c, post_id=post_id, author="ann", body="Hello there").draft_id
        c.execute(
            update(DRAFTS)
            .where(DRAFTS.c.id == draft_id)
            .values(status="in_review", stage="legal", route=["comms", "legal"], review_round=1)
        )
        # Comms was decided, overdue, by its backup: the page says in which role.
        c.execute(
            DECISIONS.insert(),
            {
                "draft_id": draft_id,
                "version": 1,
                "review_round": 1,
                "stage": "comms",
                "decision": "approve",
                "reviewer": "sam",
                "role": "supervisor",
                "at": datetime.now(UTC),
            },
        )
    backed = settings.model_copy(update={"sla_backup_roles": {"legal": "supervisor"}})
    with TestClient(create_app(backed, database=database)) as client:
        sign_in(client, "sue")
        page = client.get(f"/drafts/{draft_id}").text
        assert "Your decision (legal)" not in page  # not overdue yet
        assert f"/drafts/{draft_id}" in client.get("/reviews").text  # seen, not decided
        with database.write() as c:
            c.execute(update(DRAFTS).where(DRAFTS.c.id == draft_id).values(sla_breached=True))
        page = client.get(f"/drafts/{draft_id}").text
        assert "Your decision (legal)" in page and 'href="/reviews"' in page
        assert "(comms, as supervisor, v1)" in page
        assert f"/drafts/{draft_id}" in client.get("/reviews").text
    with TestClient(create_app(settings, database=database)) as client:  # no backup role
        sign_in(client, "sue")
        assert "Your decision (legal)" not in client.get(f"/drafts/{draft_id}").text


def test_the_draft_page_offers_auditors_the_evidence_package(
    app_client: TestClient, make_user: Callable[..., str], database: Database
) -> None:
    make_user("aud", Role.auditor)
    make_user("ann", Role.agent)
    with database.write() as c:
        draft_id = drafts.create(c, post_id=insert_post(c), author="ann", body="Hi").draft_id
    sign_in(app_client, "ann")
    assert "Evidence package" not in app_client.get(f"/drafts/{draft_id}").text
    sign_in(app_client, "aud")
    assert "Evidence package" in app_client.get(f"/drafts/{draft_id}").text
    download = app_client.get(f"/drafts/{draft_id}/evidence")
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert download.content.startswith(b"PK")
