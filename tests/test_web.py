"""The web UI's sessions, CSRF protection and role checks, over HTTP without a browser
(tests/test_web_story.py drives Chromium through the whole story)."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from records.db import Database
from records.models import Role
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
    make_user("ann", Role.agent)
    sign_in(app_client, "ann")
    with database.write() as c:
        post_id = insert_post(c)
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
    app_client: TestClient, make_user: Callable[..., str]
) -> None:
    make_user("ann", Role.agent)
    sign_in(app_client, "ann")
    inbox = app_client.get("/inbox").text
    assert 'href="/drafts"' in inbox and 'href="/reviews"' not in inbox
    assert 'href="/audit"' not in inbox
    refused = app_client.post(
        "/drafts/1/decide",
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
