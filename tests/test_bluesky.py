"""The Bluesky publisher against a local fake of a PDS and its AppView on 127.0.0.1 that
answers as they do (XRPC paths, sessions with JWTs, strong refs, record keys, 400 with an
error name, 429 with `ratelimit-reset`, slow answers)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from temporalio.testing import WorkflowEnvironment

from connectors.base import Reply
from connectors.bluesky import BlueskyPublisher, record_key
from records.account_models import ChannelAccountCreate
from records.channels import Account
from records.db import Database
from tests.helpers import JsonHandler, serve
from tests.test_publishers import PUB, REPLY, Desk, desk_on, draft_of
from workflows.approval import ResponseApproval

pytestmark = pytest.mark.temporal

HANDLE, DID = "acme.bsky.social", "did:plc:acmebank0000000000000000"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
CUSTOMER = "did:plc:customer00000000000000000"
POST = "app.bsky.feed.post"


def cid(data: Any) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def jwt(**claims: Any) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'ES256K', 'typ': 'at+jwt'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class FakeBluesky:
    """Records per repo and key (the customer's thread, and what the bank posts), logins,
    and what to do with each coming createRecord ("ok", "hang", "429", "400")."""

    script: list[str] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # uri -> {cid, value}
    creates: int = 0
    logins: int = 0
    password: str = APP_PASSWORD
    url: str = ""

    def add(self, repo: str, rkey: str, value: dict[str, Any]) -> str:
        uri = f"at://{repo}/{POST}/{rkey}"
        self.records[uri] = {"cid": cid(value), "value": value}
        return uri

    def ours(self) -> dict[str, dict[str, Any]]:
        return {u: r for u, r in self.records.items() if u.startswith(f"at://{DID}/")}


@pytest.fixture
def fake_bluesky() -> Iterator[FakeBluesky]:
    state = FakeBluesky()
    now = datetime.now(UTC).isoformat()
    root = state.add(
        CUSTOMER, "3kroot000000a", {"$type": POST, "text": "Card declined twice", "createdAt": now}
    )
    state.add(
        CUSTOMER,
        "3kreply00000a",
        {
            "$type": POST,
            "text": "Still nothing, @acme.bsky.social?",
            "createdAt": now,
            "reply": {
                "root": {"uri": root, "cid": state.records[root]["cid"]},
                "parent": {"uri": root, "cid": state.records[root]["cid"]},
            },
        },
    )

    class Handler(JsonHandler):
        def _error(self, status: int, name: str, message: str, **headers: str) -> None:
            self.answer(status, {"error": name, "message": message}, **headers)

        def _signed_in(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth.count(".") != 2:
                self._error(401, "AuthMissing", "Authentication Required")
                return False
            return True

        def do_POST(self) -> None:
            method = urlsplit(self.path).path.removeprefix("/xrpc/")
            sent = json.loads(self.body() or b"{}")
            if method == "com.atproto.server.createSession":
                if sent.get("identifier") != HANDLE or sent.get("password") != state.password:
                    self._error(401, "AuthenticationRequired", "Invalid identifier or password")
                    return
                state.logins += 1
                exp = int(time.time()) + 7200
                self.answer(
                    200,
                    {
                        "did": DID,
                        "handle": HANDLE,
                        "accessJwt": jwt(sub=DID, exp=exp, scope="com.atproto.appPass"),
                        "refreshJwt": jwt(sub=DID, exp=exp + 86400, scope="com.atproto.refresh"),
                    },
                )
                return
            if not self._signed_in():
                return
            if sent.get("repo") not in (HANDLE, DID):
                self._error(400, "InvalidRequest", "Could not find repo")
                return
            uri = f"at://{DID}/{sent['collection']}/{sent['rkey']}"
            if method == "com.atproto.repo.deleteRecord":
                state.records.pop(uri, None)
                self.answer(200, {})
                return
            step = state.script.pop(0) if state.script else "ok"
            if step == "429":
                reset = str(int(time.time()) + 2)
                self._error(
                    429, "RateLimitExceeded", "Rate Limit Exceeded", **{"ratelimit-reset": reset}
                )
                return
            if step == "400":
                self._error(400, "InvalidRequest", "Reply to a post that was deleted")
                return
            if uri in state.records:
                self._error(400, "InvalidRequest", "Record already exists")
                return
            state.creates += 1
            state.records[uri] = {"cid": cid(sent["record"]), "value": sent["record"]}
            if step == "hang":
                time.sleep(2.5)  # the client gave up after 1 s: it cannot know this worked
            self.answer(200, {"uri": uri, "cid": state.records[uri]["cid"]})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            method = parts.path.removeprefix("/xrpc/")
            if not self._signed_in():
                return
            if method == "app.bsky.feed.getPosts":
                views = [
                    {
                        "uri": uri,
                        "cid": state.records[uri]["cid"],
                        "author": {"did": uri.split("/")[2], "handle": "someone.bsky.social"},
                        "record": state.records[uri]["value"],
                        "indexedAt": now,
                    }
                    for uri in query.get("uris", [])
                    if uri in state.records
                ]
                self.answer(200, {"posts": views})
            elif method == "com.atproto.repo.getRecord":
                repo = DID if query["repo"][0] == HANDLE else query["repo"][0]
                uri = f"at://{repo}/{query['collection'][0]}/{query['rkey'][0]}"
                if uri not in state.records:
                    self._error(400, "RecordNotFound", f"Could not locate record: {uri}")
                    return
                self.answer(200, {"uri": uri, **state.records[uri]})
            else:
                self._error(501, "MethodNotImplemented", method)

    with serve(Handler) as base:
        state.url = base
        yield state


THREAD_ROOT = f"at://{CUSTOMER}/{POST}/3kroot000000a"
IN_THREAD = f"at://{CUSTOMER}/{POST}/3kreply00000a"


@pytest.fixture
async def bluesky_desk(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_bluesky: FakeBluesky,
) -> AsyncIterator[Desk]:
    account = ChannelAccountCreate(
        name="acme-bluesky",
        channel="bluesky",
        source="webhook",
        settings={"handle": HANDLE, "service": fake_bluesky.url, "timeout_seconds": "1"},
        credentials={"app_password": APP_PASSWORD, "secret": "s" * 24},
    )
    async with desk_on(temporal_env, database, make_user, account) as desk:
        yield desk


@pytest.mark.parametrize(
    ("parent", "root"),
    [(THREAD_ROOT, THREAD_ROOT), (IN_THREAD, THREAD_ROOT)],
    ids=["to-a-post", "deeper-in-a-thread"],
)
async def test_a_reply_goes_to_bluesky_with_root_and_parent_refs(
    bluesky_desk: Desk, fake_bluesky: FakeBluesky, parent: str, root: str
) -> None:
    handle = await bluesky_desk.approved(external_id=parent)
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published"
    [(uri, record)] = fake_bluesky.ours().items()
    value = record["value"]
    assert value["$type"] == POST and value["text"] == REPLY
    for ref, target in (("parent", parent), ("root", root)):
        strong = {k: v for k, v in value["reply"][ref].items() if k != "$type"}
        assert strong == {"uri": target, "cid": fake_bluesky.records[target]["cid"]}
    publication = bluesky_desk.publication(draft_of(handle))
    assert (publication.status, publication.external_id) == ("confirmed", uri)
    rkey = uri.rsplit("/", 1)[1]
    assert publication.external_url == f"https://bsky.app/profile/{DID}/post/{rkey}"


async def test_a_bluesky_timeout_after_the_record_was_made_posts_once(
    bluesky_desk: Desk, fake_bluesky: FakeBluesky
) -> None:
    fake_bluesky.script = ["hang"]
    handle = await bluesky_desk.approved(external_id=THREAD_ROOT)
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published"
    assert (fake_bluesky.creates, len(fake_bluesky.ours())) == (1, 1)  # found by its key
    assert bluesky_desk.publication(draft_of(handle)).attempts == 2
    assert fake_bluesky.logins == 1  # the session is kept between attempts


async def test_bluesky_429_waits_until_its_reset_then_posts(
    bluesky_desk: Desk, fake_bluesky: FakeBluesky
) -> None:
    fake_bluesky.script = ["429"]
    handle = await bluesky_desk.approved(external_id=THREAD_ROOT)
    started = time.monotonic()
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "published" and time.monotonic() - started >= 1
    assert len(fake_bluesky.ours()) == 1


async def test_a_revoked_app_password_ends_in_publish_failed_with_the_reason(
    bluesky_desk: Desk, fake_bluesky: FakeBluesky
) -> None:
    fake_bluesky.password = "revoked"
    handle = await bluesky_desk.approved(external_id=THREAD_ROOT)
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "publish_failed"
    error = bluesky_desk.publication(draft_of(handle)).error
    assert "Invalid identifier or password" in error and APP_PASSWORD not in error
    assert fake_bluesky.ours() == {}


async def test_a_refused_record_ends_in_publish_failed(
    bluesky_desk: Desk, fake_bluesky: FakeBluesky
) -> None:
    fake_bluesky.script = ["400"]
    handle = await bluesky_desk.approved(external_id=THREAD_ROOT)
    state = await handle.execute_update(ResponseApproval.publish, PUB)
    assert state.status == "publish_failed"
    assert "InvalidRequest: Reply to a post that was deleted" in (
        bluesky_desk.publication(draft_of(handle)).error
    )


def test_the_record_key_is_a_tid_the_same_for_every_attempt() -> None:
    asked = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    reply = Reply(
        key="draft-7-v2", channel="bluesky", in_reply_to=THREAD_ROOT, body="x", requested_at=asked
    )
    key = record_key(reply)
    assert len(key) == 13 and set(key) <= set("234567abcdefghijklmnopqrstuvwxyz")
    assert key[0] in "234567abcdefghij"  # the top bit is 0
    assert record_key(reply) == key
    other = Reply(
        key="draft-8-v1", channel="bluesky", in_reply_to=THREAD_ROOT, body="x", requested_at=asked
    )
    assert record_key(other) != key
    later = Reply(
        key="draft-7-v2",
        channel="bluesky",
        in_reply_to=THREAD_ROOT,
        body="x",
        requested_at=datetime(2026, 11, 22, 10, 1, tzinfo=UTC),
    )
    assert record_key(later) > key  # TIDs sort by time


def test_delete_takes_the_record_down_and_again_is_fine(fake_bluesky: FakeBluesky) -> None:
    account = Account(
        id=1,
        name="acme-bluesky",
        channel="bluesky",
        source="webhook",
        settings={"handle": HANDLE, "service": fake_bluesky.url},
        credentials={"app_password": APP_PASSWORD},
    )
    publisher = BlueskyPublisher(account)
    reply = Reply(
        key="draft-1-v1",
        channel="bluesky",
        in_reply_to=THREAD_ROOT,
        body=REPLY,
        requested_at=datetime.now(UTC),
    )
    posted = publisher.post(reply)
    assert publisher.lookup(reply) == posted
    publisher.delete(posted.external_id)
    assert fake_bluesky.ours() == {} and publisher.lookup(reply) is None
    publisher.delete(posted.external_id)
