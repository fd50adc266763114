"""Publishing through a platform's API, at most once, against local fakes of X's API v2 and
of a Mastodon instance on 127.0.0.1 that answer as they do (payload shapes, 201/401/429,
idempotency keys, slow answers)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from connectors import base, meta_graph
from connectors.base import MAX_WAIT, Publisher, PublishRefused, RateLimited, Reply
from connectors.http import RemoteFailure
from connectors.inbound import sign
from connectors.mastodon import MastodonPublisher
from connectors.meta_graph import MetaGraphPublisher
from connectors.outbox import OutboxPublisher
from connectors.webhook import SignedJsonPublisher
from connectors.x import XPublisher
from lifecycle.words import Role
from records import channels, drafts
from records.account_models import ChannelAccountCreate
from records.channels import Account
from records.db import Database
from records.tables import PUBLICATIONS
from tests.conftest import PASSWORD
from tests.fakes import TOKEN, FakeX, running_fake_x, x_account
from tests.helpers import JsonHandler, deliver_ticket, insert_post, serve, submitted_draft
from tests.sealing import SealedHandle
from workflows import publishing
from workflows.approval import ResponseApproval
from workflows.contracts import (
    Acted,
    Actor,
    DecisionRequest,
    DraftStart,
    PublishRequest,
    SubmitRequest,
)
from workflows.worker import ACTIVITY_THREADS, build_worker

pytestmark = pytest.mark.temporal

REPLY = "Thanks for reaching out! We have sent you a direct message."
PARENT = "1861000000000000001"


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with running_fake_x() as state:
        yield state


@dataclass
class Desk:
    env: WorkflowEnvironment
    database: Database
    queue: str
    account_id: int
    channel: str = "x"

    async def begun(self, external_id: str | None = None) -> WorkflowHandle[Any, Acted]:
        """A reply to a new post (`external_id` on the platform), still being written."""
        with self.database.write() as c:
            post_id = insert_post(
                c,
                account_id=self.account_id,
                external_id=external_id or PARENT + uuid.uuid4().hex[:4],
                channel=self.channel,
            )
            draft_id = drafts.create(c, post_id=post_id, author="agent", body=REPLY).draft_id
        handle: Any = SealedHandle(
            await self.env.client.start_workflow(
                ResponseApproval.run,
                DraftStart(draft_id=draft_id, author="agent"),
                id=f"{self.queue}-draft-{draft_id}",
                task_queue=self.queue,
            )
        )
        return handle  # type: ignore[no-any-return]

    async def approved(self, external_id: str | None = None) -> WorkflowHandle[Any, Acted]:
        """A reply to a new post (`external_id` on the platform), approved by comms."""
        handle = await self.begun(external_id)
        await handle.execute_update(
            ResponseApproval.submit, SubmitRequest(actor=Actor(username="agent", roles=["agent"]))
        )
        await handle.execute_update(
            ResponseApproval.decide,
            DecisionRequest(
                actor=Actor(username="comms", roles=["comms"]),
                stage="comms",
                decision="approve",
                version=1,
            ),
        )
        return handle

    def publication(self, draft_id: int) -> Any:
        with self.database.engine.connect() as c:
            return c.execute(select(PUBLICATIONS).where(PUBLICATIONS.c.draft_id == draft_id)).one()


@asynccontextmanager
async def desk_on(
    env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    account: ChannelAccountCreate,
) -> AsyncIterator[Desk]:
    """The people of a reply's life, `account`, and a worker that publishes through it."""
    for name, role in [("agent", Role.agent), ("comms", Role.comms), ("pub", Role.publisher)]:
        make_user(name, role)
    with database.write() as c:
        account_id = channels.create(c, account, actor="admin").id
    queue = f"{account.name}-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(env.client, queue, database, executor):
            yield Desk(env, database, queue, account_id, channel=account.channel.value)


@pytest.fixture
async def desk(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_x: FakeX,
) -> AsyncIterator[Desk]:
    account = x_account(fake_x, 1)
    async with desk_on(temporal_env, database, make_user, account) as desk:
        yield desk


PUB = PublishRequest(actor=Actor(username="pub", roles=["publisher"]))


def draft_of(handle: WorkflowHandle[Any, Acted]) -> int:
    return int(handle.id.rsplit("-", 1)[1])


async def test_a_reply_goes_to_x_in_its_thread(desk: Desk, fake_x: FakeX) -> None:
    handle = await desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published"
    [tweet] = fake_x.tweets
    assert tweet["text"] == REPLY
    assert tweet["referenced_tweets"][0]["id"].startswith(PARENT)
    publication = desk.publication(draft_of(handle))
    assert (publication.status, publication.external_id) == ("confirmed", tweet["id"])


async def test_a_timeout_after_x_accepted_the_post_still_posts_once(
    desk: Desk, fake_x: FakeX
) -> None:
    fake_x.script = ["hang"]
    handle = await desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published"
    assert len(fake_x.tweets) == 1  # found by the look-up, not posted again
    assert len(fake_x.post_times) == 1
    publication = desk.publication(draft_of(handle))
    assert (publication.attempts, publication.external_id) == (2, fake_x.tweets[0]["id"])


async def test_429_waits_as_long_as_x_says_then_posts(desk: Desk, fake_x: FakeX) -> None:
    fake_x.script = ["429"]
    handle = await desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published"
    assert len(fake_x.tweets) == 1
    first, second = fake_x.post_times
    assert second - first >= 2  # Retry-After: 2


def test_a_wait_a_platform_asks_for_is_taken_up_to_a_limit() -> None:
    """X's rate windows are fifteen minutes; a platform asking for a year (or for less
    than nothing) is asked again after at most that."""
    assert RateLimited("X answered 429", timedelta(days=365)).retry_after == MAX_WAIT
    assert RateLimited("X answered 429", timedelta(seconds=-5)).retry_after == timedelta(0)
    assert RateLimited("X answered 429", timedelta(seconds=7)).retry_after == timedelta(seconds=7)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        # Nothing was taken: the platform said so each time.
        ("429-a-year", "nothing is posted"),
        # Each request may have been taken: the record must not hide it.
        ("503", "may be on the platform"),
    ],
)
async def test_a_platform_that_never_takes_the_reply_ends_in_publish_failed(
    desk: Desk, fake_x: FakeX, monkeypatch: pytest.MonkeyPatch, answer: str, outcome: str
) -> None:
    """THREATS: no input stalls the service. A publish holds its draft (a withdrawal
    waits for its outcome): a platform answering 429 for a year, or 503 for ever, must not
    hold it for ever. After `GIVE_UP_AFTER` of trying it is `publish_failed`, saying
    why and whether the reply may be out (a publisher retries, after a look-up, or
    abandons). Here a second of waiting at most, and two of trying."""
    monkeypatch.setattr(base, "MAX_WAIT", timedelta(seconds=1))
    monkeypatch.setattr(publishing, "GIVE_UP_AFTER", timedelta(seconds=2))
    fake_x.script = [answer] * 100
    handle = await desk.approved()
    state = await asyncio.wait_for(handle.execute_update(ResponseApproval.publish, PUB), 30)
    assert state.status == "publish_failed"
    publication = desk.publication(draft_of(handle))
    assert publication.status == "failed"
    assert "not taken in 2 s of trying (last: X answered " in publication.error
    assert outcome in publication.error
    assert fake_x.tweets == []


async def test_401_ends_in_publish_failed_with_the_reason(desk: Desk, fake_x: FakeX) -> None:
    fake_x.script = ["401"]
    handle = await desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "publish_failed"
    publication = desk.publication(draft_of(handle))
    assert publication.status == "failed"
    assert "401" in publication.error and "Unauthorized" in publication.error
    assert fake_x.tweets == []


# --- Mastodon ---------------------------------------------------------------------------


@dataclass
class FakeMastodon:
    """Statuses posted (newest last), the Idempotency-Keys seen, and what to do with each
    coming POST ("ok", "hang", "401")."""

    script: list[str] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    state = FakeMastodon()

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            raw = self.body().decode()
            sent = (
                json.loads(raw)
                if self.headers.get("Content-Type", "").startswith("application/json")
                else {k: v[0] for k, v in parse_qs(raw).items()}
            )
            step = state.script.pop(0) if state.script else "ok"
            if step == "401" or self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.answer(401, {"error": "The access token is invalid"})
                return
            key = self.headers.get("Idempotency-Key", "")
            if key in state.keys:  # Mastodon answers a repeated key with the first status
                self.answer(200, state.keys[key])
                return
            status = {
                "id": str(109000 + len(state.statuses)),
                "uri": f"{state.url}/users/acme/statuses/{109000 + len(state.statuses)}",
                "url": f"{state.url}/@acme/{109000 + len(state.statuses)}",
                "created_at": "2026-11-22T10:00:00.000Z",
                "content": f"<p>{html.escape(sent['status'])}</p>",
                "in_reply_to_id": sent.get("in_reply_to_id"),
                "visibility": "public",
                "account": {"id": "42", "username": "acme", "acct": "acme"},
            }
            state.statuses.append(status)
            state.keys[key] = status
            if step == "hang":
                time.sleep(2.5)
            self.answer(200, status)

        def do_GET(self) -> None:
            if self.path.startswith("/api/v1/accounts/verify_credentials"):
                self.answer(200, {"id": "42", "username": "acme", "acct": "acme"})
            else:
                self.answer(200, list(reversed(state.statuses)))

        def do_DELETE(self) -> None:
            status_id = self.path.rsplit("/", 1)[1]
            found = [s for s in state.statuses if s["id"] == status_id]
            if not found:
                self.answer(404, {"error": "Record not found"})
                return
            state.statuses.remove(found[0])
            self.answer(200, found[0])

    with serve(Handler) as base:
        state.url = base
        yield state


@pytest.fixture
async def mastodon_desk(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_mastodon: FakeMastodon,
) -> AsyncIterator[Desk]:
    account = ChannelAccountCreate(
        name="acme-mastodon",
        channel="mastodon",
        settings={"api_base": fake_mastodon.url, "timeout_seconds": "1"},
        credentials={"access_token": TOKEN},
    )
    async with desk_on(temporal_env, database, make_user, account) as desk:
        yield desk


async def test_a_reply_goes_to_mastodon_in_its_thread_with_an_idempotency_key(
    mastodon_desk: Desk, fake_mastodon: FakeMastodon
) -> None:
    handle = await mastodon_desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published"
    [status] = fake_mastodon.statuses
    assert status["in_reply_to_id"].startswith(PARENT)
    assert status["content"] == f"<p>{html.escape(REPLY)}</p>"
    [key] = fake_mastodon.keys
    assert key == f"draft-{draft_of(handle)}-v1"
    publication = mastodon_desk.publication(draft_of(handle))
    assert (publication.status, publication.external_id) == ("confirmed", status["id"])


async def test_a_mastodon_timeout_after_the_post_was_taken_posts_once(
    mastodon_desk: Desk, fake_mastodon: FakeMastodon
) -> None:
    fake_mastodon.script = ["hang"]
    handle = await mastodon_desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published"
    assert len(fake_mastodon.statuses) == 1
    assert mastodon_desk.publication(draft_of(handle)).attempts == 2


async def test_a_revoked_mastodon_token_ends_in_publish_failed(
    mastodon_desk: Desk, fake_mastodon: FakeMastodon
) -> None:
    fake_mastodon.script = ["401"]
    handle = await mastodon_desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "publish_failed"
    error = mastodon_desk.publication(draft_of(handle)).error
    assert "401" in error and "access token is invalid" in error


# --- the signed JSON source, both ways, over the API -------------------------------------


@pytest.fixture
def shop() -> Iterator[dict[str, Any]]:
    """The system on the other side of the signed JSON source: takes replies, finds them."""
    state: dict[str, Any] = {"replies": {}, "headers": [], "url": ""}

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = self.body()
            state["headers"].append((dict(self.headers.items()), body))
            reply = json.loads(body)
            stored = state["replies"].setdefault(
                reply["key"], {"id": f"r-{len(state['replies']) + 1}", **reply}
            )
            self.answer(201, {"id": stored["id"]})

        def do_GET(self) -> None:
            key = parse_qs(self.path.partition("?")[2]).get("key", [""])[0]
            found = state["replies"].get(key)
            self.answer(200, {"id": found["id"]}) if found else self.answer(404, {})

        def do_DELETE(self) -> None:
            body = self.body()
            state["headers"].append((dict(self.headers.items()), body))
            wanted = json.loads(body)["id"]
            keys = [k for k, r in state["replies"].items() if r["id"] == wanted]
            for key in keys:
                del state["replies"][key]
            self.answer(200, {}) if keys else self.answer(404, {})

    with serve(Handler) as base:
        state["url"] = f"{base}/replies"
        yield state


async def test_a_signed_delivery_reaches_the_queue_and_its_approved_reply_goes_back_once(
    client: httpx.AsyncClient,
    people: dict[str, dict[str, str]],
    shop: dict[str, Any],
    make_user: Callable[..., str],
) -> None:
    make_user("admin", Role.admin)
    secret = "shop-secret-0123456789abcdef"
    token = await client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
    )
    admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
    created = await client.post(
        "/api/v1/channels",
        headers=admin,
        json={
            "name": "shop-events",
            "channel": "webhook",
            "source": "webhook",
            "settings": {"reply_url": shop["url"]},
            "credentials": {"secret": secret},
        },
    )
    assert created.status_code == 201, created.text
    post = await deliver_ticket(client, "shop-events", secret, "ticket-5521")

    queue = (await client.get("/api/v1/posts", headers=people["agent"])).json()["items"]
    assert [p["external_id"] for p in queue] == ["ticket-5521"]
    draft = await client.post(
        "/api/v1/drafts", headers=people["agent"], json={"post_id": post["id"], "body": REPLY}
    )
    url = f"/api/v1/drafts/{draft.json()['id']}"
    await client.post(f"{url}/submit", headers=people["agent"])
    await client.post(
        f"{url}/decisions",
        headers=people["comms"],
        json={"stage": "comms", "decision": "approve", "version": 1},
    )
    published = await client.post(f"{url}/publish", headers=people["pub"])
    assert published.json()["status"] == "published", published.text

    [reply] = shop["replies"].values()
    assert (reply["in_reply_to"], reply["text"]) == ("ticket-5521", REPLY)
    [(headers, body)] = shop["headers"]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Countersign-Signature"] == f"sha256={expected}"
    assert headers["Idempotency-Key"] == reply["key"]
    assert published.json()["publication"]["external_id"] == reply["id"]


# --- Meta Graph ---------------------------------------------------------------------------


@dataclass
class FakeGraph:
    """Replies per parent comment, and what to do with each coming POST ("ok", "hang",
    "throttle": Graph's code 4, "190": an expired token)."""

    script: list[str] = field(default_factory=list)
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    posts: int = 0
    url: str = ""


@pytest.fixture
def fake_graph() -> Iterator[FakeGraph]:
    state = FakeGraph()

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.body().decode())
            parent, edge = self.path.strip("/").split("/")[-2:]
            step = state.script.pop(0) if state.script else "ok"
            if step == "throttle":
                self.answer(
                    400, {"error": {"message": "Application request limit reached", "code": 4}}
                )
                return
            if step == "190" or self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.answer(
                    400,
                    {
                        "error": {
                            "message": "Error validating access token",
                            "type": "OAuthException",
                            "code": 190,
                        }
                    },
                )
                return
            state.posts += 1
            reply = {
                "id": f"{parent}_{9000 + state.posts}",
                ("text" if edge == "replies" else "message"): form["message"][0],
                "from": {"id": "1001"},
            }
            state.replies.setdefault(parent, []).append(reply)
            if step == "hang":
                time.sleep(2.5)
            self.answer(200, {"id": reply["id"]})

        def do_GET(self) -> None:
            assert "access_token" not in self.path  # a token in a URL ends up in logs
            assert self.headers.get("Authorization") == f"Bearer {TOKEN}"
            parent = self.path.split("?")[0].strip("/").split("/")[-2]
            self.answer(200, {"data": state.replies.get(parent, [])})

        def do_DELETE(self) -> None:
            assert self.headers.get("Authorization") == f"Bearer {TOKEN}"
            comment_id = self.path.split("?")[0].rsplit("/", 1)[1]
            for replies in state.replies.values():
                for reply in replies:
                    if reply["id"] == comment_id:
                        replies.remove(reply)
                        self.answer(200, {"success": True})
                        return
            message = f"Unsupported delete request. Object with ID '{comment_id}' does not exist"
            self.answer(
                400, {"error": {"message": message, "type": "GraphMethodException", "code": 100}}
            )

    with serve(Handler) as base:
        state.url = f"{base}/v21.0"
        yield state


@pytest.fixture
async def meta_desk(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_graph: FakeGraph,
) -> AsyncIterator[Desk]:
    account = ChannelAccountCreate(
        name="acme-meta",
        channel="facebook",
        source="meta",
        settings={"page_id": "1001", "graph_base": fake_graph.url, "timeout_seconds": "1"},
        credentials={"page_access_token": TOKEN, "app_secret": "s", "verify_token": "v"},
    )
    async with desk_on(temporal_env, database, make_user, account) as desk:
        yield desk


@pytest.mark.parametrize("channel", ["facebook", "instagram"])
async def test_a_reply_goes_under_the_meta_comment(
    meta_desk: Desk, fake_graph: FakeGraph, channel: str
) -> None:
    meta_desk.channel = channel
    handle = await meta_desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published"
    [(parent, [reply])] = fake_graph.replies.items()
    assert parent.startswith(PARENT)
    assert reply["text" if channel == "instagram" else "message"] == REPLY


async def test_a_graph_timeout_after_the_reply_was_taken_posts_once(
    meta_desk: Desk, fake_graph: FakeGraph
) -> None:
    fake_graph.script = ["hang"]
    handle = await meta_desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published"
    assert fake_graph.posts == 1
    assert meta_desk.publication(draft_of(handle)).attempts == 2


async def test_an_expired_graph_token_is_publish_failed(
    meta_desk: Desk, fake_graph: FakeGraph
) -> None:
    fake_graph.script = ["190"]
    handle = await meta_desk.approved()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "publish_failed"
    assert "Error validating access token" in meta_desk.publication(draft_of(handle)).error


@pytest.mark.parametrize(
    ("status", "payload", "headers", "expected"),
    [
        (429, {}, {"Retry-After": "7"}, ("wait", 7)),
        (429, {}, {}, ("wait", 30)),
        (400, {"error": {"message": "limit reached", "code": 4}}, {}, ("wait", 60)),
        (
            400,
            {"error": {"message": "Error validating access token", "code": 190}},
            {},
            ("refused", 0),
        ),
        (403, {"detail": "You are not allowed to reply"}, {}, ("refused", 0)),
        (503, {}, {}, ("unknown", 0)),
    ],
)
def test_what_a_platform_answer_means_for_a_publisher(
    status: int, payload: Any, headers: dict[str, str], expected: tuple[str, int]
) -> None:
    """429 and Graph's throttling codes wait (as long as the platform says), other 4xx
    cannot succeed, 5xx leaves the outcome unknown (retried after a look-up)."""
    answer = httpx.Response(
        status, json=payload, headers=headers, request=httpx.Request("POST", "https://p.example")
    )
    kind, seconds = expected
    if kind == "wait":
        with pytest.raises(RateLimited) as waited:
            meta_graph._check(answer)
        assert waited.value.retry_after == timedelta(seconds=seconds)
    elif kind == "refused":
        with pytest.raises(PublishRefused) as refused:
            meta_graph._check(answer)
        assert str(status) in str(refused.value)
        reason = payload.get("detail") or payload["error"]["message"]
        assert reason in str(refused.value)
    else:
        with pytest.raises(RemoteFailure) as failed:
            meta_graph._check(answer)
        assert str(status) in str(failed.value) and "http" not in str(failed.value)  # no URL


# --- taking a reply down -----------------------------------------------------------------


def _account(channel: str, settings: dict[str, str], credentials: dict[str, str]) -> Account:
    return Account(
        id=1, name="acme", channel=channel, source=None, settings=settings, credentials=credentials
    )


def _reply(channel: str = "x", key: str = "draft-1-v1") -> Reply:
    return Reply(
        key=key, channel=channel, in_reply_to=PARENT, body=REPLY, requested_at=datetime.now(UTC)
    )


def _delete_twice(publisher: Publisher, reply: Reply) -> None:
    """Post, take it down, and take it down again (a reply already gone is deleted)."""
    posted = publisher.post(reply)
    assert publisher.lookup(reply) == posted
    publisher.delete(posted.external_id)
    assert publisher.lookup(reply) is None
    publisher.delete(posted.external_id)


def test_x_deletes_a_tweet(fake_x: FakeX) -> None:
    account = _account("x", {"user_id": "42", "api_base": fake_x.url}, {"bearer_token": TOKEN})
    _delete_twice(XPublisher(account), _reply())
    assert fake_x.tweets == []


def test_mastodon_deletes_a_status(fake_mastodon: FakeMastodon) -> None:
    account = _account(
        "mastodon", {"api_base": fake_mastodon.url, "account_id": "42"}, {"access_token": TOKEN}
    )
    _delete_twice(MastodonPublisher(account), _reply("mastodon"))
    assert fake_mastodon.statuses == []


@pytest.mark.parametrize("channel", ["facebook", "instagram"])
def test_graph_deletes_a_comment_reply(fake_graph: FakeGraph, channel: str) -> None:
    account = _account(
        "facebook",
        {"page_id": "1001", "graph_base": fake_graph.url},
        {"page_access_token": TOKEN},
    )
    _delete_twice(MetaGraphPublisher(account), _reply(channel))
    assert fake_graph.replies == {PARENT: []}


def test_the_webhook_deletes_with_a_signed_request(shop: dict[str, Any]) -> None:
    secret = "shop-secret-0123456789abcdef"
    account = _account("webhook", {"reply_url": shop["url"]}, {"secret": secret})
    _delete_twice(SignedJsonPublisher(account), _reply("webhook"))
    assert shop["replies"] == {}
    headers, body = shop["headers"][-1]
    assert headers["X-Countersign-Signature"] == sign(secret, body)


def test_the_outbox_deletes_a_message(database: Database) -> None:
    _delete_twice(OutboxPublisher(database), _reply("outbox"))


# --- a refused publication over the API: a publisher retries it, or abandons it -----------


async def test_a_publisher_retries_a_refused_reply_or_abandons_it_over_http(
    client: httpx.AsyncClient,
    people: dict[str, dict[str, str]],
    fake_x: FakeX,
    database: Database,
) -> None:
    account = x_account(fake_x, 5)
    with database.write() as c:
        account_id = channels.create(c, account, actor="admin").id
        posts = [insert_post(c, account_id=account_id, external_id=f"{PARENT}{n}") for n in (1, 2)]
    urls = []
    for post_id in posts:
        url = await submitted_draft(client, people, post_id)
        approve = {"stage": "comms", "decision": "approve", "version": 1}
        await client.post(f"{url}/decisions", headers=people["comms"], json=approve)
        urls.append(url)
    retried, abandoned = urls
    pub = people["pub"]

    fake_x.script = ["401"]  # the token was revoked, then the account fixed
    failed = (await client.post(f"{retried}/publish", headers=pub)).json()
    assert failed["status"] == "publish_failed"
    assert failed["publication"]["status"] == "failed"
    assert "X refused the reply: 401" in failed["publication"]["error"]
    again = (await client.post(f"{retried}/publish", headers=pub)).json()
    assert again["status"] == "published" and again["publication"]["status"] == "confirmed"

    fake_x.script = ["401"]
    await client.post(f"{abandoned}/publish", headers=pub)
    dropped = await client.post(f"{abandoned}/withdraw", headers=pub)
    assert dropped.status_code == 200 and dropped.json()["status"] == "withdrawn"
    late = await client.post(f"{abandoned}/publish", headers=pub)
    assert late.status_code == 409
    assert [t["referenced_tweets"][0]["id"] for t in fake_x.tweets] == [f"{PARENT}1"]
    timeline = (await client.get(abandoned, headers=pub)).json()["timeline"]
    assert [(e["action"], e["role"]) for e in timeline[-2:]] == [
        ("draft.publish_failed", "publisher"),
        ("draft.withdrawn", "publisher"),
    ]


async def test_a_publisher_cannot_withdraw_a_reply_that_did_not_fail(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    url = await submitted_draft(client, people)
    refused = await client.post(f"{url}/withdraw", headers=people["pub"])
    assert refused.status_code == 403
    assert "a publisher one whose publication failed" in refused.json()["detail"]


async def test_a_publish_waiting_on_the_platform_heartbeats(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_x: FakeX,
) -> None:
    """While X takes its time, the activity tells the server it is alive (so that a dead
    worker's attempt is retried after the heartbeat timeout, not the start-to-close one)."""
    fake_x.script = ["slow"]
    async with desk_on(temporal_env, database, make_user, x_account(fake_x, 10)) as desk:
        handle = await desk.approved()
        publishing = asyncio.create_task(handle.execute_update(ResponseApproval.publish, PUB))
        beats = []
        while not publishing.done():
            described = await handle.describe()
            beats += [
                activity.last_heartbeat_time.ToDatetime()
                for activity in described.raw_description.pending_activities
                if activity.HasField("last_heartbeat_time")
            ]
            await asyncio.sleep(0.2)
        assert (await publishing).status == "published"
    assert beats, "no heartbeat reached the server while X was answering"
    assert len(fake_x.tweets) == 1
