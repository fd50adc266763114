"""Revocable sessions (issue 20, item 6): every token has an id; signing out revokes it on
the API and the pages at once, even for a copy; an admin signs a person out everywhere;
disabling ends every session. Both databases."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.tokens import TokenService
from lifecycle.words import Role
from records.db import Database
from records.settings import Settings
from tests.test_web import csrf_of, sign_in

Headers = dict[str, str]
ME = "/api/v1/me"


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def test_signing_out_revokes_the_token_everywhere(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., Headers]
) -> None:
    """The finding: after logout, the session's token still worked for up to an hour."""
    make_user("sam", Role.agent)
    sam, other = login("sam"), login("sam")
    assert app_client.get(ME, headers=sam).status_code == 200
    assert app_client.post("/api/v1/auth/logout", headers=sam).status_code == 204
    refused = app_client.get(ME, headers=sam)
    assert refused.status_code == 401 and "session has ended" in refused.json()["detail"]
    assert app_client.post("/api/v1/auth/logout", headers=sam).status_code == 401
    assert app_client.get(ME, headers=other).status_code == 200  # another session goes on


def test_signing_out_of_the_pages_ends_a_copied_cookie_too(
    app_client: TestClient, make_user: Callable[..., str], settings: Settings
) -> None:
    make_user("ann", Role.agent)
    sign_in(app_client, "ann")
    copied = app_client.cookies.get("countersign_session")
    assert copied and app_client.get(ME, headers=bearer(copied)).status_code == 200
    inbox = app_client.get("/inbox")
    app_client.post("/logout", data={"csrf_token": csrf_of(inbox.text)}, follow_redirects=False)
    assert app_client.get(ME, headers=bearer(copied)).status_code == 401
    app_client.cookies.set("countersign_session", copied)  # the stolen cookie, replayed
    replayed = app_client.get("/inbox", follow_redirects=False)
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/login")


def test_an_admin_signs_a_person_out_everywhere(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
    database: Database,
) -> None:
    make_user("root", Role.admin)
    make_user("sam", Role.agent)
    admin, phone, laptop = login("root"), login("sam"), login("sam")
    assert app_client.post("/api/v1/users/sam/sessions/revoke", headers=phone).status_code == 403
    assert app_client.post("/api/v1/users/sam/sessions/revoke", headers=admin).status_code == 204
    assert app_client.get(ME, headers=phone).status_code == 401
    assert app_client.get(ME, headers=laptop).status_code == 401
    assert app_client.get(ME, headers=login("sam")).status_code == 200  # may sign in again
    assert app_client.get(ME, headers=admin).status_code == 200
    missing = app_client.post("/api/v1/users/nobody/sessions/revoke", headers=admin)
    assert missing.status_code == 404
    with database.engine.connect() as connection:
        event = connection.execute(
            text("SELECT actor, payload FROM audit_events WHERE action = 'user.sessions_revoked'")
        ).one()
    assert event.actor == "root" and '"sam"' in event.payload


def test_a_token_issued_before_the_revocation_is_refused_even_if_unused(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
    settings: Settings,
) -> None:
    """A token minted (with the real key) before the admin's revocation but never used:
    it is refused too, since its `iat` is before the revocation."""
    make_user("root", Role.admin)
    make_user("sam", Role.agent)
    minted = TokenService(settings).issue("sam").access_token
    app_client.post("/api/v1/users/sam/sessions/revoke", headers=login("root"))
    assert app_client.get(ME, headers=bearer(minted)).status_code == 401


def test_the_admin_page_signs_a_person_out_everywhere(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., Headers]
) -> None:
    make_user("root", Role.admin)
    make_user("sam", Role.agent)
    sam = login("sam")
    sign_in(app_client, "root")
    page = app_client.get("/admin/users")
    assert "Sign sam out everywhere" in page.text
    done = app_client.post(
        "/admin/users/sam",
        data={"csrf_token": csrf_of(page.text), "action": "sign-out"},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "sam is signed out everywhere." in done.text
    assert app_client.get(ME, headers=sam).status_code == 401
