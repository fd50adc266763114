"""Pages that cannot be scripted (issue 20, item 3): security headers on every answer, only
http(s) addresses from platforms become links, and notices only the server wrote are shown."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from api.app import create_app
from connectors.base import Posted, web_url
from lifecycle.words import Role
from records import drafts
from records.db import Database
from records.settings import Settings
from records.tables import PUBLICATIONS
from records.types import utcnow
from tests.conftest import PASSWORD
from tests.helpers import insert_post
from tests.test_web import sign_in
from web import session

SCRIPTED = "javascript:alert(document.cookie)//"


def test_every_page_and_answer_carries_the_security_headers(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., dict[str, str]]
) -> None:
    page = app_client.get("/login")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "object-src 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "cache-control" not in page.headers  # nobody is signed in yet
    make_user("ann", Role.agent)
    answer = app_client.get("/api/v1/me", headers=login("ann"))
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    sign_in(app_client, "ann")
    assert app_client.get("/inbox").headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://x.com/acme/status/1", True),
        ("http://example.com/a?b=c#d", True),
        (SCRIPTED, False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox", False),
        ("https://", False),
        ("//evil.example/x", False),
        ("https://ok.example/\nSet-Cookie: x", False),
        ("https://ok.example/" + "a" * 3000, False),
        (None, False),
        (42, False),
    ],
)
def test_only_web_addresses_are_kept_from_a_platform(url: object, kept: bool) -> None:
    assert web_url(url) == (url if kept else None)
    if isinstance(url, str | None):
        assert Posted(external_id="1", url=url).url == (url if kept else None)


def test_a_stored_script_address_is_never_a_link(
    app_client: TestClient, make_user: Callable[..., str], database: Database
) -> None:
    """Even a `javascript:` address already in the database (before this change) is shown
    as text, never as a link."""
    make_user("aud", Role.auditor)
    with database.write() as c:
        draft_id = drafts.create(c, post_id=insert_post(c), author="ann", body="Hi").draft_id
        c.execute(
            insert(PUBLICATIONS),
            {
                "draft_id": draft_id,
                "version": 1,
                "channel": "x",
                "status": "confirmed",
                "requested_by": "pub",
                "external_id": "post-1",
                "external_url": SCRIPTED,
                "attempts": 1,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            },
        )
    sign_in(app_client, "aud")
    page = app_client.get(f"/drafts/{draft_id}").text
    assert "post-1" in page and "javascript:" not in page


def test_a_notice_shows_only_when_the_server_wrote_it(
    app_client: TestClient, make_user: Callable[..., str], database: Database
) -> None:
    forged = app_client.get("/login", params={"notice": "Your account is locked: call 555-0100"})
    assert "555-0100" not in forged.text
    make_user("ann", Role.agent)
    sign_in(app_client, "ann")
    with database.write() as c:
        post_id = insert_post(c)
    page = app_client.get("/inbox").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    taken = app_client.post(f"/posts/{post_id}/take", data={"csrf_token": token})
    assert taken.status_code == 200 and f"Post {post_id} assigned to you." in taken.text
    tampered = str(taken.url).replace("assigned+to+you", "assigned+to+mallory")
    assert "mallory" not in app_client.get(tampered).text


def test_the_csrf_key_is_not_the_token_key(
    app_client: TestClient, make_user: Callable[..., str], settings: Settings
) -> None:
    """A CSRF token made with the JWT secret (what the pages used to sign with) is refused:
    knowing one secret gives nothing of the other."""
    make_user("ann", Role.agent)
    sign_in(app_client, "ann")
    seed = app_client.cookies.get(session.CSRF_COOKIE)
    assert seed
    old_style = hmac.new(settings.jwt_secret.encode(), seed.encode(), hashlib.sha256).hexdigest()
    refused = app_client.post("/logout", data={"csrf_token": old_style})
    assert refused.status_code == 403
    assert settings.csrf_secret != settings.jwt_secret


def test_docs_schema_and_metrics_can_be_kept_for_signed_in_callers(
    settings: Settings, database: Database, make_user: Callable[..., str]
) -> None:
    """On by default in production; a setting elsewhere. Liveness stays open."""
    assert settings.endpoints_private is False
    private = settings.model_copy(update={"private_endpoints": True})
    make_user("ann", Role.agent)
    with TestClient(create_app(private, database=database)) as client:
        paths = ("/docs", "/redoc", "/openapi.json", "/metrics", "/api/v1/metrics")
        for path in paths:
            answer = client.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["content-type"] == "application/problem+json"
        assert client.get("/healthz").status_code == 200
        token = client.post(
            "/api/v1/auth/token", data={"username": "ann", "password": PASSWORD}
        ).json()["access_token"]
        for path in paths:
            signed = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert signed.status_code == 200, path
        forged = client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
        assert forged.status_code == 401
    with TestClient(create_app(settings, database=database)) as client:
        assert client.get("/openapi.json").status_code == 200


def test_another_agents_draft_is_missing_for_every_method(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., dict[str, str]],
    database: Database,
) -> None:
    """Reads and every action answer 404 alike, for a draft of another agent's and for one
    that does not exist: what exists is not told."""
    make_user("ann", Role.agent)
    make_user("bob", Role.agent)
    with database.write() as c:
        draft_id = drafts.create(c, post_id=insert_post(c), author="ann", body="Hi").draft_id
    bob = login("bob")
    for target in (draft_id, draft_id + 1000):
        url = f"/api/v1/drafts/{target}"
        answers = [
            app_client.get(url, headers=bob),
            app_client.put(url, headers=bob, json={"body": "Mine", "expected_version": 1}),
            app_client.post(f"{url}/submit", headers=bob),
            app_client.post(f"{url}/withdraw", headers=bob),
            app_client.post(
                f"{url}/decisions",
                headers=bob,
                json={"stage": "comms", "decision": "approve", "version": 1},
            ),
        ]
        assert [a.status_code for a in answers] == [404] * 5, [a.text for a in answers]
