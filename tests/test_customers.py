"""Customers and conversations over HTTP (issue 22, items 5, 6 and 8): a post's author is
an identity of one customer, kept up to date; follow-ups join their conversation, whether
they answer the customer's post or our published reply, and whatever order they arrive in;
agents and supervisors link and unlink identities (audited) and keep notes."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from api.app import create_app
from connectors import crm
from connectors.inbound import sign
from lifecycle.words import Role
from policies.versions import RuleBook
from records import erasure, retention
from records.audit_models import AuditEvent
from records.db import Database
from records.draft_models import Draft, DraftVersion, Publication
from records.ingest import store
from records.post_models import PostCreate
from records.settings import Settings
from records.tables import CUSTOMERS
from records.types import utcnow
from tests.conftest import PASSWORD
from tests.helpers import JsonHandler, serve
from tests.test_web import csrf_of, sign_in

RULES = RuleBook()  # the shipped rule set triages

Headers = dict[str, str]
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def post(n: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "x",
        "external_id": f"x-{n}",
        "author": "@dana",
        "author_profile": {"id": "1001", "display_name": "Dana", "followers": 12},
        "text": f"Message {n} about my card.",
        "url": f"https://x.example/dana/status/{n}",
        "received_at": (T0 + timedelta(minutes=n)).isoformat(),
        "origin": "mention",
    }
    body.update(overrides)
    return body


@pytest.fixture
def agent(make_user: Callable[..., str], login: Callable[..., Headers]) -> Headers:
    make_user("agent", Role.agent)
    return login("agent")


CONNECTOR: list[Database] = []  # the database the test's "connector" stores posts in


@pytest.fixture(autouse=True)
def _connector(database: Database) -> None:
    CONNECTOR[:] = [database]


def ingest(client: TestClient, headers: Headers, body: dict[str, Any]) -> dict[str, Any]:
    """A post as a channel connector stores it (with its author's profile), as the API
    shows it."""
    data = PostCreate.model_validate(body)
    with CONNECTOR[0].write_session() as session:
        [stored] = store(
            session, [data], rules=RULES, actor="poller:test", actor_role="integration"
        )
    answer = client.get(f"/api/v1/posts/{stored.post_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_person_cannot_set_an_authors_profile_nor_post_from_the_future(
    app_client: TestClient, agent: Headers
) -> None:
    """A profile (platform id, verified, followers) comes from the platform: an agent
    typing a post in could otherwise rewrite another customer's identity; a post from the
    future would freeze its author's profile."""
    forged = app_client.post("/api/v1/posts", json=post(1), headers=agent)
    assert forged.status_code == 422 and "author_profile" in forged.text
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    future = app_client.post(
        "/api/v1/posts", json=post(2, author_profile=None, received_at=later), headers=agent
    )
    assert future.status_code == 422 and "future" in future.text
    fine = app_client.post("/api/v1/posts", json=post(3, author_profile=None), headers=agent)
    assert fine.status_code == 201, fine.text


def test_an_author_is_one_customer_kept_up_to_date(app_client: TestClient, agent: Headers) -> None:
    first = ingest(app_client, agent, post(1))
    renamed = post(2, author="@dana_new", author_profile={"id": "1001", "followers": 40})
    second = ingest(app_client, agent, renamed)
    assert first["customer_id"] == second["customer_id"] is not None
    assert first["author_id"] == "1001" and first["origin"] == "mention"
    customer = app_client.get(f"/api/v1/customers/{first['customer_id']}", headers=agent).json()
    [identity] = customer["identities"]
    assert identity["handle"] == "@dana_new" and identity["followers"] == 40
    assert identity["display_name"] == "Dana"  # not said again, so kept
    # An older post arriving late does not take the profile back.
    ingest(app_client, agent, post(0, author="@dana_old", author_profile={"id": "1001"}))
    customer = app_client.get(f"/api/v1/customers/{first['customer_id']}", headers=agent).json()
    assert customer["identities"][0]["handle"] == "@dana_new"
    # Without an id, the handle is the author's id on that channel.
    other = ingest(app_client, agent, post(3, author="@sam", author_profile=None))
    assert other["author_id"] == "@sam" and other["customer_id"] != first["customer_id"]


def test_follow_ups_join_the_conversation_in_any_order(
    app_client: TestClient, agent: Headers
) -> None:
    root = ingest(app_client, agent, post(1))
    reply = ingest(app_client, agent, post(2, in_reply_to="x-1", origin="reply"))
    assert reply["conversation_id"] == root["conversation_id"]
    # A reply to a post not stored yet starts a conversation rooted at that post; the post,
    # when it arrives, joins it.
    late_child = ingest(app_client, agent, post(5, in_reply_to="x-4"))
    late_parent = ingest(app_client, agent, post(4))
    assert late_parent["conversation_id"] == late_child["conversation_id"]
    assert late_child["conversation_id"] != root["conversation_id"]
    # Where the platform names the thread's root, posts of one thread meet there.
    a = ingest(app_client, agent, post(7, in_reply_to="x-unknown-a", root_id="x-6"))
    b = ingest(app_client, agent, post(8, in_reply_to="x-unknown-b", root_id="x-6"))
    assert a["conversation_id"] == b["conversation_id"]


def publish(database: Database, post_id: int, external_id: str, body: str, at: datetime) -> None:
    """A reply of ours, as the publisher leaves it once the channel confirmed it."""
    with database.write_session() as session:
        draft = Draft(post_id=post_id, author="agent", status="published", version=1)
        session.add(draft)
        session.flush()
        assert draft.id is not None
        session.add(
            DraftVersion(draft_id=draft.id, version=1, body=body, content_sha256="0" * 64,
                         created_by="agent")
        )  # fmt: skip
        session.add(
            Publication(draft_id=draft.id, version=1, channel="x", status="confirmed",
                        requested_by="publisher", external_id=external_id,
                        external_url=f"https://x.com/i/web/status/{external_id}",
                        created_at=at, updated_at=at)
        )  # fmt: skip


def test_a_follow_up_to_our_reply_joins_and_the_conversation_reads_in_order(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    first = ingest(app_client, agent, post(1))
    publish(database, first["id"], "our-1", "Sorry, Dana: DM us.", T0 + timedelta(minutes=3))
    follow_up = ingest(app_client, agent, post(9, in_reply_to="our-1", origin="reply"))
    assert follow_up["conversation_id"] == first["conversation_id"]
    conversation = app_client.get(
        f"/api/v1/conversations/{first['conversation_id']}", headers=agent
    ).json()
    assert [p["external_id"] for p in conversation["posts"]] == ["x-1", "x-9"]
    [ours] = conversation["replies"]
    assert ours["body"] == "Sorry, Dana: DM us." and ours["post_id"] == first["id"]
    assert conversation["customer_id"] == first["customer_id"]
    assert conversation["last_post_at"].startswith("2026-11-01T09:09")


def test_link_and_unlink_move_identities_and_posts_and_are_audited(
    app_client: TestClient,
    database: Database,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
) -> None:
    make_user("sup", Role.supervisor)
    make_user("agent", Role.agent)
    sup, agent = login("sup"), login("agent")
    on_x = ingest(app_client, agent, post(1))
    on_facebook = ingest(
        app_client,
        agent,
        post(2, channel="facebook", external_id="fb-2", author="Dana F.",
             author_profile={"id": "fb-77"}, url="https://facebook.example/p/2"),
    )  # fmt: skip
    x_customer, fb_customer = on_x["customer_id"], on_facebook["customer_id"]
    assert x_customer != fb_customer

    linked = app_client.post(
        f"/api/v1/customers/{x_customer}/link", json={"customer_id": fb_customer}, headers=agent
    )
    assert linked.status_code == 200, linked.text
    assert {i["channel"] for i in linked.json()["identities"]} == {"x", "facebook"}
    moved = app_client.get(f"/api/v1/posts/{on_facebook['id']}", headers=agent).json()
    assert moved["customer_id"] == x_customer
    # The merged customer answers as the one it lives on in.
    assert app_client.get(f"/api/v1/customers/{fb_customer}", headers=agent).json()["id"] == (
        x_customer
    )
    again = app_client.post(
        f"/api/v1/customers/{x_customer}/link", json={"customer_id": fb_customer}, headers=agent
    )
    assert again.status_code == 409

    fb_identity = next(i for i in linked.json()["identities"] if i["channel"] == "facebook")
    unlinked = app_client.post(
        f"/api/v1/customers/{x_customer}/identities/{fb_identity['id']}/unlink", headers=sup
    )
    assert unlinked.status_code == 200, unlinked.text
    alone = unlinked.json()["id"]
    assert alone not in (x_customer, fb_customer)
    assert (
        app_client.get(f"/api/v1/posts/{on_facebook['id']}", headers=agent).json()["customer_id"]
        == alone
    )
    x_identity = app_client.get(f"/api/v1/customers/{x_customer}", headers=agent).json()
    [only] = x_identity["identities"]
    last = app_client.post(
        f"/api/v1/customers/{x_customer}/identities/{only['id']}/unlink", headers=sup
    )
    assert last.status_code == 409  # a customer keeps at least one identity

    with database.read_session() as session:
        actions = ["customer.linked", "customer.unlinked"]
        events = session.exec(select(AuditEvent).where(col(AuditEvent.action).in_(actions))).all()
    assert [(e.action, e.actor, e.role) for e in events] == [
        ("customer.linked", "agent", "agent"),
        ("customer.unlinked", "sup", "supervisor"),
    ]
    assert json.loads(events[0].payload)["identities"] == [fb_identity["id"]]


def test_notes_and_who_may_read_or_change_a_customer(
    app_client: TestClient,
    agent: Headers,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
) -> None:
    customer = ingest(app_client, agent, post(1))["customer_id"]
    noted = app_client.post(
        f"/api/v1/customers/{customer}/notes", json={"text": "Prefers DM."}, headers=agent
    )
    assert noted.status_code == 201, noted.text
    view = app_client.get(f"/api/v1/customers/{customer}", headers=agent).json()
    assert [(n["author"], n["text"]) for n in view["notes"]] == [("agent", "Prefers DM.")]
    blank = app_client.post(f"/api/v1/customers/{customer}/notes", json={"text": "  "},
                            headers=agent)  # fmt: skip
    assert blank.status_code == 422
    assert blank.headers["content-type"].startswith("application/problem+json")
    make_user("lee", Role.legal)
    make_user("aud", Role.auditor)
    legal, auditor = login("lee"), login("aud")
    assert app_client.get(f"/api/v1/customers/{customer}", headers=legal).status_code == 200
    assert app_client.get(f"/api/v1/customers/{customer}", headers=auditor).status_code == 403
    assert (
        app_client.post(f"/api/v1/customers/{customer}/notes", json={"text": "x"}, headers=legal)
    ).status_code == 403
    assert app_client.get("/api/v1/customers/999999", headers=agent).status_code == 404


def test_the_history_lists_every_post_with_what_we_did_newest_first(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    """Across channels once linked, paged by cursor, each post with its replies, the time
    to the first, and open drafts; nothing missing, nothing twice."""
    x_posts = [ingest(app_client, agent, post(n)) for n in range(1, 6)]
    fb = ingest(
        app_client,
        agent,
        post(9, channel="facebook", external_id="fb-9", author="Dana F.",
             author_profile={"id": "fb-77"}, url="https://facebook.example/p/9"),
    )  # fmt: skip
    customer = x_posts[0]["customer_id"]
    linked = app_client.post(
        f"/api/v1/customers/{customer}/link", json={"customer_id": fb["customer_id"]},
        headers=agent,
    )  # fmt: skip
    assert linked.status_code == 200, linked.text
    publish(database, x_posts[1]["id"], "our-2", "We are on it.", T0 + timedelta(minutes=12))
    with database.write_session() as session:  # a draft still being written
        draft = Draft(post_id=x_posts[4]["id"], author="agent", status="draft")
        session.add(draft)
        session.flush()
        draft_id = draft.id

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = app_client.get(
            f"/api/v1/customers/{customer}/history", params=params, headers=agent
        ).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [item["post"]["external_id"] for item in seen] == [
        "fb-9", "x-5", "x-4", "x-3", "x-2", "x-1",
    ]  # fmt: skip
    answered = next(item for item in seen if item["post"]["external_id"] == "x-2")
    assert [r["body"] for r in answered["replies"]] == ["We are on it."]
    assert answered["first_response_seconds"] == 10 * 60
    drafted = next(item for item in seen if item["post"]["external_id"] == "x-5")
    assert [d["draft_id"] for d in drafted["open_drafts"]] == [draft_id]
    assert all(item["first_response_seconds"] is None for item in seen if not item["replies"])
    bad = app_client.get(
        f"/api/v1/customers/{customer}/history", params={"cursor": "bm9wZQ"}, headers=agent
    )
    assert bad.status_code == 422


@pytest.mark.temporal
async def test_a_draft_for_a_conversation_answers_its_latest_post(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    agent = people["agent"]

    async def typed_in(body: dict[str, Any]) -> dict[str, Any]:
        answer = await client.post("/api/v1/posts", json=body, headers=agent)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    first = await typed_in(post(1, author_profile=None))
    later = await typed_in(post(2, in_reply_to="x-1", author_profile=None))
    # Someone else answers in Dana's thread: their own conversation, not Dana's.
    tom = await typed_in(post(3, in_reply_to="x-2", author="@tom", author_profile=None))
    assert later["conversation_id"] == first["conversation_id"] != tom["conversation_id"]
    body = {"conversation_id": first["conversation_id"], "body": "Thanks, Dana."}
    draft = await client.post("/api/v1/drafts", json=body, headers=agent)
    assert draft.status_code == 201, draft.text
    assert draft.json()["post_id"] == later["id"]  # Dana's latest, not Tom's
    both = {**body, "post_id": first["id"]}
    refused = await client.post("/api/v1/drafts", json=both, headers=agent)
    assert refused.status_code == 422 and "post_id or conversation_id" in refused.text
    missing = await client.post(
        "/api/v1/drafts", json={"conversation_id": 999999, "body": "x"}, headers=agent
    )
    assert missing.status_code == 404


def test_the_agent_sees_the_customers_earlier_reply_before_answering(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    """The reply page's customer panel: who the customer is, what they said before and
    what we answered; the conversation page reads in order; notes from the customer page."""
    first = ingest(app_client, agent, post(1))
    publish(database, first["id"], "our-1", "Sorry, Dana: DM us.", T0 + timedelta(minutes=3))
    again = ingest(app_client, agent, post(9, in_reply_to="our-1", text="Still broken!"))
    sign_in(app_client, "agent")
    page = app_client.get(f"/posts/{again['id']}/reply")
    assert page.status_code == 200
    assert "Dana" in page.text and "Sorry, Dana: DM us." in page.text
    assert "after 2 min" in page.text  # received 09:01, answered 09:03
    thread = app_client.get(f"/conversations/{again['conversation_id']}").text
    assert thread.index("Message 1") < thread.index("Sorry, Dana") < thread.index("Still broken")
    customer_page = app_client.get(f"/customers/{first['customer_id']}").text
    # Each of the page's own forms carries its CSRF token (a page test that borrowed
    # another form's token would not show that the customer's forms work).
    for action in ("notes", "link"):
        form = re.search(rf'action="/customers/{first["customer_id"]}/{action}".*?</form>',
                         customer_page, re.S)  # fmt: skip
        assert form and 'name="csrf_token"' in form[0], action
    kept = app_client.post(
        f"/customers/{first['customer_id']}/notes",
        data={"text": "Card replaced on 2 Nov.", "csrf_token": csrf_of(customer_page)},
    )
    assert kept.status_code == 200 and "Card replaced on 2 Nov." in kept.text
    forged = app_client.post(f"/customers/{first['customer_id']}/identities/1/unlink")
    assert forged.status_code == 403  # no token, no change


@contextmanager
def with_a_crm(
    settings: Settings,
    database: Database,
    make_user: Callable[..., str],
    url: str,
    **more: Any,
) -> Iterator[tuple[TestClient, dict[str, str], int]]:
    """The API with the CRM at `url` (and `more` settings), an agent signed in, and the
    customer of a post they stored."""
    live = settings.model_copy(
        update={"crm_url": url, "crm_secret": "crm-secret-of-16-chars", **more}
    )
    with TestClient(create_app(live, database=database)) as client:
        make_user("agent", Role.agent)
        agent = {"Authorization": "Bearer " + client.post(
            "/api/v1/auth/token", data={"username": "agent", "password": PASSWORD}
        ).json()["access_token"]}  # fmt: skip
        yield client, agent, ingest(client, agent, post(1))["customer_id"]


def test_the_crm_is_asked_on_the_side_and_its_answer_is_shown_once_it_comes(
    settings: Settings, database: Database, make_user: Callable[..., str]
) -> None:
    """Issue 22, item 6: the customer answers at once while the CRM is still thinking; its
    signed request names the identities; the answer is cached and shown; a CRM answering
    nonsense changes nothing."""
    crm._failed_at.clear()  # no back-off left over from elsewhere
    release = threading.Event()
    asked: list[tuple[dict[str, Any], str]] = []
    answers = [{"id": "C-77", "tier": "gold", "value": 1200}, ["not", "an", "object"]]

    class Crm(JsonHandler):
        def do_POST(self) -> None:
            body = self.body()
            asked.append((json.loads(body), self.headers.get("X-Countersign-Signature", "")))
            assert sign("crm-secret-of-16-chars", body) == asked[-1][1]
            release.wait(10)
            self.answer(200, answers.pop(0))

    with (
        serve(Crm) as url,
        with_a_crm(settings, database, make_user, url, crm_cache_hours=1e-9) as answered,
    ):
        client, agent, customer = answered
        first = client.get(f"/api/v1/customers/{customer}", headers=agent)
        assert first.status_code == 200 and first.json()["crm_tier"] is None
        assert not release.is_set()  # answered while the CRM still holds the request
        release.set()
        assert wait_for(
            lambda: (
                client.get(f"/api/v1/customers/{customer}", headers=agent).json()["crm_tier"]
                == "gold"
            )
        )
        [(request, _)] = asked[:1]
        assert datetime.fromisoformat(request.pop("sent_at")) > T0  # replays can be told
        assert request == {"customer_id": customer, "identities": [
            {"channel": "x", "author_id": "1001", "handle": "@dana"}]}  # fmt: skip
        shown = client.get(f"/api/v1/customers/{customer}", headers=agent).json()
        assert (shown["crm_id"], shown["crm_value"]) == ("C-77", "1200")
        assert wait_for(lambda: not answers)  # the nonsense was asked for and came
        time.sleep(0.2)
        kept = client.get(f"/api/v1/customers/{customer}", headers=agent).json()
        assert (kept["crm_id"], kept["crm_tier"]) == ("C-77", "gold")


def test_a_crm_look_up_under_way_ends_before_the_app_does(
    settings: Settings, database: Database, make_user: Callable[..., str]
) -> None:
    """The app stops (a deploy, a test's end) while the CRM still holds a look-up: the
    look-up ends first, its answer kept, rather than running on against a closed database
    and logging after the process has let go of its log."""
    crm._failed_at.clear()

    class SlowCrm(JsonHandler):
        def do_POST(self) -> None:
            self.body()
            time.sleep(1)
            self.answer(200, {"id": "C-9", "tier": "silver", "value": 10})

    with serve(SlowCrm) as url, with_a_crm(settings, database, make_user, url) as answered:
        client, agent, customer = answered
        assert client.get(f"/api/v1/customers/{customer}", headers=agent).status_code == 200
    with database.engine.connect() as c:  # the app has stopped: the answer is in
        tier = c.execute(select(CUSTOMERS.c.crm_tier).where(CUSTOMERS.c.id == customer))
        assert tier.scalar_one() == "silver"


def wait_for(predicate: Callable[[], bool], seconds: float = 10) -> bool:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_erasing_a_customer_erases_who_they_were_everywhere(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    """Issue 22 added personal data beside the posts (the identity's handle, name, platform
    id and profile, the customer's name, CRM answer and notes): an erasure request takes
    all of it, as it takes the posts' text."""
    first = ingest(app_client, agent, post(1))
    customer = first["customer_id"]
    noted = app_client.post(f"/api/v1/customers/{customer}/notes",
                            json={"text": "Lives at 1 Main St."}, headers=agent)  # fmt: skip
    assert noted.status_code == 201
    with database.write() as c:
        erasure.erase_customer(c, "@dana", actor="adm", role="admin")
    view = app_client.get(f"/api/v1/customers/{customer}", headers=agent).json()
    [identity] = view["identities"]
    assert view["display_name"] == identity["handle"] == "[erased]"
    assert "1001" not in identity["author_id"] and identity["display_name"] is None
    assert identity["followers"] is None and view["notes"] == []
    erased_post = app_client.get(f"/api/v1/posts/{first['id']}", headers=agent).json()
    assert erased_post["author_id"] is None and erased_post["author"] == "[erased]"


def test_a_thread_in_one_batch_stays_one_conversation(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    """A reply to a stored post and a reply to that reply, stored in one batch (a poller's
    page, oldest first), are one conversation with the stored post."""
    first = ingest(app_client, agent, post(1))
    batch = [PostCreate.model_validate(post(2, in_reply_to="x-1")),
             PostCreate.model_validate(post(3, in_reply_to="x-2"))]  # fmt: skip
    with database.write_session() as session:
        stored = store(session, batch, rules=RULES, actor="poller:test", actor_role="integration")
    for item in stored:
        shown = app_client.get(f"/api/v1/posts/{item.post_id}", headers=agent).json()
        assert shown["conversation_id"] == first["conversation_id"]


def test_a_conversation_spans_its_earliest_to_its_latest_post_whatever_their_order(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    """Replies to a post not yet stored, newest first in one batch: their conversation
    starts at the earliest and was last posted in at the latest. The post they answer,
    in a page fetched late, joins it and moves its start back, not its last post."""
    replies = [PostCreate.model_validate(post(n, in_reply_to="x-1")) for n in (7, 4)]
    with database.write_session() as session:
        stored = store(session, replies, rules=RULES, actor="poller:t", actor_role="integration")
    shown = app_client.get(f"/api/v1/posts/{stored[0].post_id}", headers=agent).json()
    path = f"/api/v1/conversations/{shown['conversation_id']}"
    conversation = app_client.get(path, headers=agent).json()
    assert conversation["started_at"].startswith("2026-11-01T09:04")
    assert conversation["last_post_at"].startswith("2026-11-01T09:07")
    late = [PostCreate.model_validate(post(5, in_reply_to="x-1")),
            PostCreate.model_validate(post(1))]  # fmt: skip
    with database.write_session() as session:
        store(session, late, rules=RULES, actor="poller:t", actor_role="integration")
    again = app_client.get(path, headers=agent).json()
    assert [p["external_id"] for p in again["posts"]] == ["x-1", "x-4", "x-5", "x-7"]
    assert again["started_at"].startswith("2026-11-01T09:01")
    assert again["last_post_at"].startswith("2026-11-01T09:07")


def test_an_author_known_by_handle_takes_their_platform_id_and_stays_one_customer(
    app_client: TestClient, agent: Headers
) -> None:
    """Posts stored before connectors gave platform ids (and posts typed in) know their
    author by handle; when a connector then names the id, it is the same customer."""
    typed = app_client.post("/api/v1/posts", json=post(1, author_profile=None), headers=agent)
    assert typed.status_code == 201, typed.text
    polled = ingest(app_client, agent, post(2))  # the same @dana, now with id 1001
    assert polled["customer_id"] == typed.json()["customer_id"]
    [identity] = app_client.get(f"/api/v1/customers/{polled['customer_id']}", headers=agent).json()[
        "identities"
    ]
    assert (identity["author_id"], identity["handle"]) == ("1001", "@dana")
    again = app_client.get(f"/api/v1/posts/{typed.json()['id']}", headers=agent).json()
    assert again["author_id"] == "1001"


def test_a_post_erased_by_retention_does_not_take_its_authors_platform_id_back(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    """Retention erases an old post's text, handle and platform id, and keeps the identity
    (the customer is still with us). When a connector then names that identity's platform
    id, the identity takes it; the erased post stays without one."""
    old = PostCreate.model_validate(post(1, author_profile=None))  # typed in: handle only
    with database.write_session() as session:
        [stored] = store(session, [old], rules=RULES, actor="agent", actor_role="agent")
    with database.write() as connection:
        later = utcnow() + timedelta(days=7 * 365)
        assert retention.purge(connection, retention.retention_days({}), now=later).posts == 1
    new = PostCreate.model_validate(post(2))  # @dana again, now with her id 1001
    with database.write_session() as session:
        store(session, [new], rules=RULES, actor="poller:t", actor_role="integration")
    erased = app_client.get(f"/api/v1/posts/{stored.post_id}", headers=agent).json()
    assert erased["author"] == "[erased]" and erased["author_id"] is None


def test_a_follower_count_as_large_as_a_profile_may_say_is_kept(
    app_client: TestClient, agent: Headers
) -> None:
    """Profiles may say up to 10^12 followers: on PostgreSQL a 32-bit column refused the
    whole batch such a post came in."""
    big = ingest(app_client, agent, post(1, author_profile={"id": "1001", "followers": 10**12}))
    customer = app_client.get(f"/api/v1/customers/{big['customer_id']}", headers=agent).json()
    assert customer["identities"][0]["followers"] == 10**12


def test_an_author_named_by_handle_and_by_id_in_one_batch_is_updated_from_the_newer(
    app_client: TestClient, agent: Headers
) -> None:
    """A handle-only identity adopted by its platform id within a batch that also names it
    by handle: one identity, its profile from the newer post (two rows updating one
    identity in one statement leave either, by chance)."""
    first = ingest(app_client, agent, post(1, author="@bob", author_profile=None))
    batch = [
        PostCreate.model_validate(
            post(3, author="@bob", author_profile={"id": "77", "display_name": "Bob new"})
        ),
        PostCreate.model_validate(post(2, author="@bob", author_profile=None)),
    ]
    with CONNECTOR[0].write_session() as session:
        stored = store(session, batch, rules=RULES, actor="poller:test", actor_role="integration")
    shown = [app_client.get(f"/api/v1/posts/{s.post_id}", headers=agent).json() for s in stored]
    assert {p["customer_id"] for p in shown} == {first["customer_id"]}
    customer = app_client.get(f"/api/v1/customers/{first['customer_id']}", headers=agent).json()
    [identity] = customer["identities"]
    assert identity["display_name"] == "Bob new" and identity["author_id"] == "77"
