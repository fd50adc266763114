"""The Mastodon poller against a local fake instance: mentions become posts once each, in
pages, across a failed page and a worker restart (nothing lost, nothing doubled)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from lifecycle.words import Presence, Role
from policies.versions import RuleBook
from records import channels, routing, routing_setup
from records.account_models import ChannelAccountCreate
from records.db import Database
from records.ingest import store
from records.post_models import PostCreate
from records.routing_models import QueueCreate
from records.tables import POSTS
from tests.conftest import PASSWORD
from tests.helpers import JsonHandler, eventually, serve
from workflows.background_contracts import (
    PollStart,
    RouterStart,
    poller_id,
    router_workflow_id,
)
from workflows.polling import MastodonPoller
from workflows.router import QueueRouter
from workflows.worker import ACTIVITY_THREADS, build_worker

pytestmark = pytest.mark.temporal


@dataclass
class Instance:
    mentions: list[dict[str, Any]] = field(default_factory=list)
    tagged: list[dict[str, Any]] = field(default_factory=list)  # #acmecard's timeline
    fail_next: list[int] = field(default_factory=list)  # request numbers to answer 500
    requests: int = 0
    url: str = ""

    def tag_post(self, n: int, text: str) -> None:
        """A status on #acmecard's timeline that does not mention us."""
        self.tagged.append(
            {
                "id": str(5000 + n),
                "uri": f"{self.url}/users/al/statuses/{5000 + n}",
                "url": f"{self.url}/@al/{5000 + n}",
                "created_at": "2026-11-22T11:00:00.000Z",
                "content": f"<p>{text}</p>",
                "account": {"id": "8", "username": "al", "acct": "al@other.social",
                            "followers_count": 12},
            }
        )  # fmt: skip

    def mention(self, n: int) -> None:
        status = {
            "id": str(9000 + n),
            "uri": f"{self.url}/users/jo/statuses/{9000 + n}",
            "url": f"{self.url}/@jo/{9000 + n}",
            "created_at": "2026-11-22T10:00:00.000Z",
            "content": f'<p><span class="h-card">@acme</span> help with order {n}?</p>',
            "account": {"id": "7", "username": "jo", "acct": "jo@example.social"},
        }
        self.mentions.append(
            {
                "id": str(100 + n),
                "type": "mention",
                "created_at": status["created_at"],
                "account": status["account"],
                "status": status,
            }
        )


@pytest.fixture
def instance() -> Iterator[Instance]:
    state = Instance()

    class Handler(JsonHandler):
        def do_GET(self) -> None:
            state.requests += 1
            if state.requests in state.fail_next:
                self.answer(500, {"error": "try again"})
                return
            query = parse_qs(self.path.partition("?")[2])
            limit = int(query.get("limit", ["40"])[0])
            if self.path.startswith("/api/v1/timelines/tag/"):
                source = state.tagged if "/tag/acmecard" in self.path else []
            else:
                source = state.mentions
            found = sorted(source, key=lambda m: int(m["id"]))
            if "min_id" in query:
                newer = [m for m in found if int(m["id"]) > int(query["min_id"][0])][:limit]
            else:
                newer = found[-limit:]
            self.answer(200, list(reversed(newer)))  # Mastodon answers newest first

    with serve(Handler) as base:
        state.url = base
        yield state


def mastodon_posts(database: Database) -> list[str]:
    with database.engine.connect() as c:
        rows = c.execute(
            select(POSTS.c.external_id).where(POSTS.c.channel == "mastodon").order_by(POSTS.c.id)
        )
        return [r.external_id for r in rows]


async def test_mentions_become_posts_once_across_a_failed_page_and_a_restart(
    temporal_env: WorkflowEnvironment, database: Database, instance: Instance
) -> None:
    for n in range(1, 6):
        instance.mention(n)
    instance.fail_next = [2]  # the second page fails once, after the first was stored
    with database.write() as c:
        account = channels.create(
            c,
            ChannelAccountCreate(
                name="acme-social",
                channel="mastodon",
                settings={"api_base": instance.url, "page_size": "2", "timeout_seconds": "2"},
                credentials={"access_token": "token"},
            ),
            actor="admin",
        )
    queue = f"poll-{uuid.uuid4().hex[:8]}"
    start = PollStart(account_id=account.id, since_id="100", interval_seconds=0.2)
    workflow_id = f"{queue}-{poller_id(account.id)}"
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            handle = await temporal_env.client.start_workflow(
                MastodonPoller.run, start, id=workflow_id, task_queue=queue
            )
            assert await eventually(lambda: len(mastodon_posts(database)) == 5)
    # The worker is gone; mentions keep coming; a new worker picks up where it was.
    for n in range(6, 9):
        instance.mention(n)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            assert await eventually(lambda: len(mastodon_posts(database)) == 8)
            await asyncio.sleep(0.5)  # a few more rounds: nothing new, nothing again
    stored = mastodon_posts(database)
    assert stored == [str(9000 + n) for n in range(1, 9)]
    with database.engine.connect() as c:
        text, author, account_id = c.execute(
            select(POSTS.c.text, POSTS.c.author, POSTS.c.account_id).where(
                POSTS.c.external_id == "9001"
            )
        ).one()
    assert (text, author, account_id) == (
        "@acme help with order 1?",
        "@jo@example.social",
        account.id,
    )
    with database.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(POSTS)).scalar() == 8
    await handle.terminate("test over")


async def test_an_admin_adding_a_polled_mastodon_account_brings_its_mentions_in(
    client: httpx.AsyncClient,
    make_user: Callable[..., str],
    database: Database,
    instance: Instance,
) -> None:
    for n in range(1, 3):
        instance.mention(n)
    make_user("admin", Role.admin)
    token = await client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
    )
    admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
    account = {
        "name": "acme-social",
        "channel": "mastodon",
        "settings": {"api_base": instance.url, "poll_seconds": "1"},
        "credentials": {"access_token": "token"},
    }
    bad = await client.post(
        "/api/v1/channels",
        headers=admin,
        json={**account, "settings": {**account["settings"], "poll_seconds": "0"}},
    )
    assert bad.status_code == 422 and "poll_seconds" in bad.text
    created = await client.post("/api/v1/channels", headers=admin, json=account)
    assert created.status_code == 201, created.text
    # A new poller starts with the newest mentions, then follows new ones.
    assert await eventually(lambda: len(mastodon_posts(database)) == 2)
    instance.mention(3)
    assert await eventually(lambda: len(mastodon_posts(database)) == 3)


async def test_a_listening_account_takes_its_hashtags_timeline_as_posts_about_us(
    temporal_env: WorkflowEnvironment, database: Database, instance: Instance
) -> None:
    """Issue 22, item 3: a Mastodon account's listening terms are read as hashtags; a post
    there is `listening`, one with an excluded word is left out, each is stored once."""
    instance.mention(1)
    instance.tag_post(1, "Is #AcmeCard down for anyone?")
    instance.tag_post(2, "#AcmeCard hiring now")
    with database.write() as c:
        account = channels.create(
            c,
            ChannelAccountCreate(
                name="acme-social", channel="mastodon",
                settings={"api_base": instance.url, "page_size": "2", "timeout_seconds": "2",
                          "listen_terms": "#AcmeCard", "listen_exclude": "hiring"},
                credentials={"access_token": "token"},
            ),
            actor="admin",
        )  # fmt: skip
    queue = f"poll-{uuid.uuid4().hex[:8]}"
    start = PollStart(account_id=account.id, since_id="100", interval_seconds=0.2)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            handle = await temporal_env.client.start_workflow(
                MastodonPoller.run, start, id=f"{queue}-{poller_id(account.id)}", task_queue=queue
            )
            assert await eventually(lambda: len(mastodon_posts(database)) == 2)
            instance.tag_post(3, "#acmecard works again")
            assert await eventually(lambda: len(mastodon_posts(database)) == 3)
            await asyncio.sleep(0.5)
    await handle.terminate("test over")
    with database.engine.connect() as c:
        rows = dict(
            c.execute(select(POSTS.c.external_id, POSTS.c.origin).where(
                POSTS.c.channel == "mastodon")).all()
        )  # fmt: skip
    assert rows == {"9001": "mention", "5001": "listening", "5003": "listening"}


async def test_a_round_that_stores_posts_nudges_the_queues_router(
    temporal_env: WorkflowEnvironment,
    database: Database,
    instance: Instance,
    make_user: Callable[..., str],
) -> None:
    """Issue 23: a mention the poller brings in is offered to an available agent at once,
    though the router's own timer is an hour away."""
    make_user("ana", Role.agent)
    with database.write() as c:
        routing_setup.create_queue(c, QueueCreate(name="all"), actor="sue", role="supervisor")
        routing.set_presence(c, "ana", Presence.available, actor="ana", role="agent")
        account = channels.create(
            c,
            ChannelAccountCreate(
                name="acme-social", channel="mastodon",
                settings={"api_base": instance.url, "page_size": "5", "timeout_seconds": "2"},
                credentials={"access_token": "token"},
            ),
            actor="admin",
        )  # fmt: skip
    queue = f"nudge-{uuid.uuid4().hex[:8]}"
    router_id = router_workflow_id(f"{queue}-")  # the poller's own deployment's
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            router = await temporal_env.client.start_workflow(
                QueueRouter.run, RouterStart(every_seconds=3600), id=router_id, task_queue=queue
            )
            # A post before the mention: once it is ana's, the router's first round is over,
            # and from then on only a nudge can give her the mention before the hour is up.
            first = arrive(database)
            assert await eventually(lambda: assigned_to(database, first) == "ana")
            start = PollStart(account_id=account.id, since_id="100", interval_seconds=0.2)
            poller = await temporal_env.client.start_workflow(
                MastodonPoller.run, start, id=f"{queue}-{poller_id(account.id)}", task_queue=queue
            )
            instance.mention(1)
            assert await eventually(lambda: assigned_to(database, "9001") == "ana")
            await poller.terminate("test over")
            await router.terminate("test over")


def arrive(database: Database) -> str:
    data = PostCreate.model_validate({
        "channel": "x", "external_id": "before", "author": "@c", "text": "@acme hello?",
        "url": "https://x.example/1", "received_at": "2026-11-30T09:00:00+00:00",
    })  # fmt: skip
    with database.write_session() as session:
        store(session, [data], rules=RuleBook(), actor="test", actor_role="integration")
    return "before"


def assigned_to(database: Database, external_id: str) -> str | None:
    with database.engine.connect() as c:
        found = c.execute(select(POSTS.c.assignee).where(POSTS.c.external_id == external_id))
        return found.scalar_one_or_none()
