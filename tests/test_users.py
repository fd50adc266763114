"""Sign-in, `/me`, and user administration."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from lifecycle.words import SYSTEM_ACTORS, Role
from records import users
from records.db import Database

Headers = dict[str, str]


def test_sign_in_returns_a_bearer_token_and_me_shows_roles(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., Headers]
) -> None:
    make_user("sam", Role.comms, Role.legal)
    response = app_client.post(
        "/api/v1/auth/token", data={"username": "sam", "password": "correct horse battery staple"}
    )
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "bearer" and token["expires_in"] > 0
    me = app_client.get("/api/v1/me", headers=login("sam")).json()
    assert me["username"] == "sam" and me["roles"] == ["comms", "legal"]
    assert me["disabled"] is False


def test_wrong_password_unknown_user_and_disabled_user_cannot_sign_in(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
    database: Database,
) -> None:
    make_user("sam", Role.agent)
    make_user("root", Role.admin)
    for username, password in (("sam", "wrong password!"), ("nobody", "whatever it is")):
        response = app_client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    admin = login("root")
    sam = login("sam")
    # Disabling works on the next request, even for a token issued before.
    with database.write_session() as session:
        users.disable(session, "sam", actor="root", actor_role="admin")
    assert app_client.get("/api/v1/me", headers=sam).status_code == 401
    assert app_client.get("/api/v1/me", headers=admin).status_code == 200
    response = app_client.post(
        "/api/v1/auth/token", data={"username": "sam", "password": "correct horse battery staple"}
    )
    assert response.status_code == 401


def test_admins_create_and_list_users_others_cannot(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., Headers]
) -> None:
    make_user("root", Role.admin)
    make_user("sam", Role.agent)
    admin, agent = login("root"), login("sam")
    body = {
        "username": "new.agent",
        "display_name": "New Agent",
        "roles": ["agent", "publisher"],
        "password": "a long enough password",
    }
    assert app_client.post("/api/v1/users", json=body, headers=agent).status_code == 403
    created = app_client.post("/api/v1/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["roles"] == ["agent", "publisher"]
    assert "password" not in created.text and "hash" not in created.text
    duplicate = app_client.post("/api/v1/users", json=body, headers=admin)
    assert duplicate.status_code == 409
    assert "new.agent" in duplicate.json()["detail"]
    bad = app_client.post(
        "/api/v1/users", json={**body, "username": "x2", "roles": ["wizard"]}, headers=admin
    )
    assert bad.status_code == 422
    for system in sorted(SYSTEM_ACTORS):  # the record names what the system does so
        taken = app_client.post("/api/v1/users", json={**body, "username": system}, headers=admin)
        assert taken.status_code == 422 and "by itself" in taken.text, taken.text
    listed = app_client.get("/api/v1/users", headers=admin).json()["items"]
    assert [u["username"] for u in listed] == ["new.agent", "root", "sam"]
    assert app_client.get("/api/v1/users", headers=agent).status_code == 403
    login("new.agent", "a long enough password")


def test_every_route_but_health_and_sign_in_requires_a_token(
    app: FastAPI, app_client: TestClient
) -> None:
    open_paths = {"/api/v1/auth/token", "/healthz", "/readyz", "/metrics"}
    # Platforms' deliveries carry no bearer token: each is signed with its channel
    # account's secret instead (tests/test_inbound.py: unsigned or forged is 401).
    signed_paths = {"/api/v1/inbound/{account_name}"}
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if path in open_paths | signed_paths:
            continue
        for method in operations:
            response = app_client.request(method.upper(), path.replace("{post_id}", "1"))
            assert response.status_code == 401, (method, path, response.status_code)
            checked += 1
    assert checked >= 6


def test_passwords_are_stored_as_argon2id_and_any_cost_still_verifies() -> None:
    from argon2 import PasswordHasher, extract_parameters, profiles

    from records import passwords

    assert passwords.PARAMETERS == profiles.RFC_9106_LOW_MEMORY  # what the service hashes with
    real = PasswordHasher.from_parameters(passwords.PARAMETERS).hash("correct horse battery staple")
    assert extract_parameters(real) == passwords.PARAMETERS
    cheap = passwords.hash_password("correct horse battery staple")  # this suite's
    assert cheap.startswith("$argon2id$") and "correct horse" not in cheap
    for stored in (real, cheap):
        assert passwords.verify_password(stored, "correct horse battery staple")
        assert not passwords.verify_password(stored, "correct horse battery stapler")
    assert not passwords.verify_password(None, "correct horse battery staple")


def test_admins_change_roles_and_disable_or_enable_an_account(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
    database: Database,
) -> None:
    make_user("root", Role.admin)
    make_user("sam", Role.agent)
    make_user("aud", Role.auditor)
    admin, sam = login("root"), login("sam")
    changed = app_client.patch(
        "/api/v1/users/sam", headers=admin, json={"roles": ["comms", "legal"]}
    )
    assert changed.status_code == 200 and changed.json()["roles"] == ["comms", "legal"]
    assert app_client.get("/api/v1/me", headers=sam).json()["roles"] == ["comms", "legal"]
    off = app_client.patch("/api/v1/users/sam", headers=admin, json={"disabled": True})
    assert off.json()["disabled"] is True
    assert app_client.get("/api/v1/me", headers=sam).status_code == 401
    on = app_client.patch("/api/v1/users/sam", headers=admin, json={"disabled": False})
    assert on.json()["disabled"] is False
    # Disabling ended the sessions sam had: enabled again, sam signs in anew.
    assert app_client.get("/api/v1/me", headers=sam).status_code == 401
    sam = login("sam")
    assert app_client.get("/api/v1/me", headers=sam).status_code == 200
    trail = app_client.get("/api/v1/audit?actor=root", headers=login("aud")).json()["items"]
    actions = [e["action"] for e in trail if e["action"] != "user.created"]
    assert actions == ["user.roles_changed", "user.disabled", "user.enabled"]
    for body, status in (
        ({"roles": []}, 422),
        ({"roles": ["wizard"]}, 422),
        ({"nickname": "x"}, 422),
        ({"disabled": True}, 404),
    ):
        target = "nobody" if status == 404 else "sam"
        answer = app_client.patch(f"/api/v1/users/{target}", headers=admin, json=body)
        assert answer.status_code == status, body
    own = app_client.patch("/api/v1/users/root", headers=admin, json={"disabled": True})
    assert own.status_code == 422 and "own account" in own.json()["detail"]
    not_admin = app_client.patch("/api/v1/users/sam", headers=sam, json={"disabled": True})
    assert not_admin.status_code == 403
