"""Channel accounts and signed inbound deliveries: the generic JSON source and Meta's
webhooks (handshake, X-Hub-Signature-256, Facebook and Instagram comments)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lifecycle.words import Role

API = "/api/v1"
SECRET = "generic-source-secret-0123456789"
APP_SECRET = "meta-app-secret-abcdef"
VERIFY = "meta-verify-token"


def signed(secret: str, payload: Any) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    return body, "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def admin(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., dict[str, str]]
) -> dict[str, str]:
    make_user("admin", Role.admin)
    make_user("agent", Role.agent)
    headers = login("admin")
    for account in (
        {
            "name": "shop-events",
            "channel": "webhook",
            "source": "webhook",
            "credentials": {"secret": SECRET},
        },
        {
            "name": "acme-meta",
            "channel": "facebook",
            "source": "meta",
            "settings": {"page_id": "1001"},
            "credentials": {"app_secret": APP_SECRET, "verify_token": VERIFY},
        },
    ):
        created = app_client.post(f"{API}/channels", headers=headers, json=account)
        assert created.status_code == 201, created.text
    return headers


def test_channel_accounts_show_which_credentials_are_set_never_their_values(
    app_client: TestClient, admin: dict[str, str], login: Callable[..., dict[str, str]]
) -> None:
    listed = app_client.get(f"{API}/channels", headers=admin)
    assert listed.status_code == 200
    meta = next(a for a in listed.json()["items"] if a["name"] == "acme-meta")
    assert meta["credential_names"] == ["app_secret", "verify_token"]
    assert meta["settings"] == {"page_id": "1001"}
    for secret in (SECRET, APP_SECRET, VERIFY):
        assert secret not in listed.text
    assert "credentials" not in meta

    again = app_client.post(
        f"{API}/channels", headers=admin, json={"name": "acme-meta", "channel": "facebook"}
    )
    assert again.status_code == 409
    unknown = app_client.post(
        f"{API}/channels", headers=admin, json={"name": "x-1", "channel": "x", "source": "fax"}
    )
    assert unknown.status_code == 422 and "fax" in unknown.text
    agent = login("agent")
    assert app_client.get(f"{API}/channels", headers=agent).status_code == 403


def test_a_signed_delivery_becomes_a_post_once(
    app_client: TestClient,
    admin: dict[str, str],
    login: Callable[..., dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    post = {
        "external_id": "order-77-question",
        "author": "jo@example.com",
        "text": "Where is order 77?",
        "url": "https://shop.example/tickets/77",
        "received_at": "2026-11-22T09:00:00Z",
    }
    body, signature = signed(SECRET, post)
    headers = {"X-Countersign-Signature": signature, "Content-Type": "application/json"}
    first = app_client.post(f"{API}/inbound/shop-events", content=body, headers=headers)
    assert first.status_code == 200, first.text
    [stored] = first.json()["posts"]
    assert (stored["channel"], stored["external_id"], stored["created"]) == (
        "webhook",
        "order-77-question",
        True,
    )
    replay = app_client.post(f"{API}/inbound/shop-events", content=body, headers=headers)
    assert replay.json()["posts"] == [{**stored, "created": False}]

    queue = app_client.get(f"{API}/posts", headers=login("agent")).json()["items"]
    assert [p["external_id"] for p in queue] == ["order-77-question"]
    assert SECRET not in caplog.text


def test_bad_signatures_are_401_and_store_nothing(
    app_client: TestClient, admin: dict[str, str], login: Callable[..., dict[str, str]]
) -> None:
    post = {
        "external_id": "forged",
        "author": "mallory",
        "text": "Refund me",
        "url": "https://shop.example/t/1",
        "received_at": "2026-11-22T09:00:00Z",
    }
    body, _ = signed(SECRET, post)
    _, wrong = signed("not-the-secret", post)
    for headers in ({"X-Countersign-Signature": wrong}, {}, {"X-Countersign-Signature": "md5=1"}):
        answer = app_client.post(f"{API}/inbound/shop-events", content=body, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["content-type"] == "application/problem+json"
    meta_body, _ = signed(APP_SECRET, {"object": "page", "entry": []})
    forged = app_client.post(
        f"{API}/inbound/acme-meta",
        content=meta_body,
        headers={"X-Hub-Signature-256": wrong},
    )
    assert forged.status_code == 401
    assert app_client.get(f"{API}/posts", headers=login("agent")).json()["items"] == []
    # An account that does not exist answers exactly as a bad signature (no names leak).
    known = app_client.post(f"{API}/inbound/shop-events", content=body, headers={})
    unknown = app_client.post(f"{API}/inbound/nobody", content=body)
    assert unknown.status_code == known.status_code == 401
    assert unknown.json() == known.json()


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ("not json", "not JSON"),
        ({"posts": []}, "at least one"),
        ({"external_id": "1", "author": "a", "text": "t", "url": "https://e.x/1"}, "received_at"),
        (
            {
                "external_id": "1",
                "author": "a",
                "text": "t",
                "url": "https://e.x/1",
                "received_at": "2026-11-22T09:00:00",
            },
            "time zone",
        ),
        (
            {
                "external_id": "1",
                "author": "a",
                "text": "t",
                "url": "ftp://e.x/1",
                "received_at": "2026-11-22T09:00:00Z",
            },
            "url",
        ),
    ],
)
def test_a_signed_body_of_the_wrong_shape_is_422_naming_the_problem(
    app_client: TestClient, admin: dict[str, str], payload: Any, says: str
) -> None:
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = app_client.post(
        f"{API}/inbound/shop-events", content=body, headers={"X-Countersign-Signature": signature}
    )
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["detail"]


def test_the_meta_handshake_answers_the_challenge_only_to_the_right_token(
    app_client: TestClient, admin: dict[str, str]
) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "8675309"}
    answer = app_client.get(f"{API}/inbound/acme-meta", params=params)
    assert answer.status_code == 200 and answer.text == "8675309"
    wrong = app_client.get(f"{API}/inbound/acme-meta", params={**params, "hub.verify_token": "x"})
    assert wrong.status_code == 401
    # Nor do sources without a handshake, or accounts that do not exist, tell themselves apart.
    for name in ("shop-events", "nobody"):
        other = app_client.get(f"{API}/inbound/{name}", params=params)
        assert (other.status_code, other.json()) == (401, wrong.json())


def test_facebook_and_instagram_comments_become_posts(
    app_client: TestClient, admin: dict[str, str]
) -> None:
    facebook = {
        "object": "page",
        "entry": [
            {
                "id": "1001",
                "time": 1763802000,
                "changes": [
                    {
                        "field": "feed",
                        "value": {
                            "item": "comment",
                            "verb": "add",
                            "comment_id": "1001_2002",
                            "post_id": "1001_3003",
                            "message": "My card was charged twice!",
                            "from": {"id": "42", "name": "Jo Bloggs"},
                            "created_time": 1763802000,
                        },
                    },
                    {"field": "feed", "value": {"item": "reaction", "verb": "add"}},
                    {
                        "field": "feed",
                        "value": {
                            "item": "comment",
                            "verb": "remove",
                            "comment_id": "1001_9",
                            "from": {"id": "1"},
                        },
                    },
                ],
            }
        ],
    }
    body, signature = signed(APP_SECRET, facebook)
    answer = app_client.post(
        f"{API}/inbound/acme-meta", content=body, headers={"X-Hub-Signature-256": signature}
    )
    assert answer.status_code == 200, answer.text
    assert [(p["channel"], p["external_id"]) for p in answer.json()["posts"]] == [
        ("facebook", "1001_2002")
    ]
    instagram = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841",
                "time": 1763802060,
                "changes": [
                    {
                        "field": "comments",
                        "value": {
                            "id": "17865799348089039",
                            "text": "Is the app down?",
                            "from": {"id": "7", "username": "sam.r"},
                            "media": {"id": "18011", "media_product_type": "FEED"},
                        },
                    }
                ],
            }
        ],
    }
    body, signature = signed(APP_SECRET, instagram)
    answer = app_client.post(
        f"{API}/inbound/acme-meta", content=body, headers={"X-Hub-Signature-256": signature}
    )
    assert [(p["channel"], p["external_id"]) for p in answer.json()["posts"]] == [
        ("instagram", "17865799348089039")
    ]
    odd, signature = signed(APP_SECRET, {"object": "page", "entry": [{"changes": [{}]}]})
    answer = app_client.post(
        f"{API}/inbound/acme-meta", content=odd, headers={"X-Hub-Signature-256": signature}
    )
    assert answer.status_code == 422
