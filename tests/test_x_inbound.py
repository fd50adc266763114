"""X inbound against a local fake of X's API v2 (issue 22, items 1, 3, 4, 5, 9): mentions
and brand-term search become posts once each, across pages, a failed page, a spent rate
limit and a worker restart; a post found by both routes is stored once; replies join their
thread's conversation; authors become customers with their profile."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlmodel
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from connectors import x_inbound
from lifecycle.words import Role
from policies.versions import RuleBook
from records import channels
from records.account_models import ChannelAccountCreate
from records.customer_models import CustomerIdentity
from records.db import Database
from records.tables import POSTS
from tests.conftest import PASSWORD
from tests.fake_x_api import USER_ID, XApi, running_x_api
from tests.fakes import TOKEN
from tests.helpers import eventually
from workflows.background_contracts import (
    PollJob,
    PollStart,
    poller_id,
)
from workflows.mentions import PollActivities
from workflows.polling import MastodonPoller
from workflows.worker import ACTIVITY_THREADS, build_worker

pytestmark = pytest.mark.temporal


@pytest.fixture
def x_api() -> Iterator[XApi]:
    with running_x_api() as api:
        yield api


def settings_for(api: XApi, **more: str) -> dict[str, str]:
    return {"user_id": USER_ID, "api_base": api.url, "page_size": "5", "timeout_seconds": "2",
            "listen_terms": "AcmeBank,#acmecard", "listen_exclude": "job", **more}  # fmt: skip


def stored(database: Database) -> list[tuple[str, str, str | None, int | None]]:
    with database.engine.connect() as c:
        rows = c.execute(
            select(POSTS.c.external_id, POSTS.c.origin, POSTS.c.in_reply_to,
                   POSTS.c.conversation_id)
            .where(POSTS.c.channel == "x").order_by(POSTS.c.external_id)
        )  # fmt: skip
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_mentions_and_brand_posts_arrive_once_across_pages_limits_and_a_restart(
    temporal_env: WorkflowEnvironment, database: Database, x_api: XApi
) -> None:
    root = x_api.tweet(1, "@acme my card was charged twice")
    with database.write() as c:
        account = channels.create(
            c,
            ChannelAccountCreate(name="acme-x", channel="x", settings=settings_for(x_api),
                                 credentials={"bearer_token": TOKEN}),
            actor="admin",
        )  # fmt: skip
    queue = f"poll-{uuid.uuid4().hex[:8]}"
    start = PollStart(account_id=account.id, since_id=None, interval_seconds=0.2)
    workflow_id = f"{queue}-{poller_id(account.id)}"
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            handle = await temporal_env.client.start_workflow(
                MastodonPoller.run, start, id=workflow_id, task_queue=queue
            )
            assert await eventually(lambda: len(stored(database)) == 1)
            # Twelve mentions (three pages of five), a brand post that does not mention us,
            # one that mentions us *and* names the brand (found by both routes), an
            # excluded one; a page fails once and the rate limit runs out on the way.
            for n in range(2, 14):
                x_api.tweet(n, f"@acme follow-up {n}", reply_to=n - 1, root=1)
            x_api.tweet(20, "AcmeBank lost my transfer", author="777", mentions_us=False)
            x_api.tweet(21, "@acme is #AcmeCard down?", author="778")
            x_api.tweet(22, "AcmeBank job opening", author="779", mentions_us=False)
            x_api.fail = [len(x_api.requests) + 2]
            x_api.budget = 4
            assert await eventually(lambda: len(stored(database)) == 15, seconds=30)
    # The worker is gone; posts keep coming; a new worker picks up where it was.
    x_api.tweet(30, "@acme thanks, sorted", reply_to=13, root=1)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            assert await eventually(lambda: len(stored(database)) == 16, seconds=30)
            await asyncio.sleep(0.6)  # a few more rounds: nothing new, nothing again
    await handle.terminate("test over")

    posts = {external_id: rest for external_id, *rest in stored(database)}
    assert len(posts) == 16  # each once: 14 mentions, 1 brand post, the double route once
    assert 1_900_000_000_000_000_022 not in {int(i) for i in posts}  # excluded word
    assert posts[root][0] == "mention"
    assert posts[x_api.tweets[1]["id"]][0] == "reply"
    assert posts["1900000000000000020"][0] == "listening"
    assert posts["1900000000000000021"][0] == "mention"  # first seen as a mention
    thread = {posts[t["id"]][2] for t in x_api.tweets if t["conversation_id"] == root}
    assert len(thread) == 1  # the customer's follow-ups are one conversation
    with database.read_session() as session:
        identity = session.exec(
            sqlmodel.select(CustomerIdentity).where(CustomerIdentity.author_id == "777")
        ).one()
    assert (identity.handle, identity.followers) == ("@user777", 7770)
    with database.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(POSTS)).scalar() == 16
    # Older pages were read on from where a page ended (until_id), and the rate limit was
    # waited out, not hammered: a 429 ends the round until the window resets.
    assert any("until_id" in path for path in x_api.requests)
    assert 1 <= x_api.refused <= 4, x_api.refused


def test_the_listening_query_asks_for_the_terms_and_leaves_out_the_exclusions() -> None:
    query = x_inbound.listening_query(
        {"listen_terms": "AcmeBank, #acmecard, Acme Bank", "listen_exclude": "job,hiring"}
    )
    assert query == '(AcmeBank OR #acmecard OR "Acme Bank") -job -hiring -is:retweet'
    assert x_inbound.listening_query({}) == ""


async def test_an_admin_adding_a_polled_x_account_brings_its_mentions_in(
    client: httpx.AsyncClient,
    make_user: Callable[..., str],
    database: Database,
    x_api: XApi,
) -> None:
    x_api.tweet(1, "@acme hello")
    make_user("admin", Role.admin)
    token = await client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
    )
    admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
    account = {
        "name": "acme-x",
        "channel": "x",
        "settings": settings_for(x_api, poll_seconds="1"),
        "credentials": {"bearer_token": TOKEN},
    }
    created = await client.post("/api/v1/channels", headers=admin, json=account)
    assert created.status_code == 201, created.text
    assert await eventually(lambda: len(stored(database)) == 1)
    x_api.tweet(2, "@acme still there?")
    assert await eventually(lambda: len(stored(database)) == 2)


def x_account(database: Database, api: XApi) -> channels.Account:
    with database.write() as c:
        made = channels.create(
            c,
            ChannelAccountCreate(name="acme-x", channel="x", settings=settings_for(api),
                                 credentials={"bearer_token": TOKEN}),
            actor="admin",
        )  # fmt: skip
        return channels.by_id(c, made.id)


def test_a_refused_search_starts_afresh_and_the_mentions_go_on(
    database: Database, x_api: XApi
) -> None:
    """A 4xx on one stream (X refuses a since_id older than its seven days of search) must
    not hold the account: the mentions are stored, the search starts from the newest."""
    account = x_account(database, x_api)
    for n in range(1, 4):
        x_api.tweet(n, f"@acme help {n}")
    old = json.dumps({"mentions": {"since": "1"}, "listening": {"since": "1"}})
    x_api.search_refuses = True
    batches = list(x_inbound.poll(account, old))
    assert sum(len(posts) for posts, _ in batches) == 3
    position = json.loads(batches[-1][1])
    assert position["listening"] == {} and position["mentions"]["since"] == x_api.tweets[-1]["id"]


def test_a_long_round_stops_in_time_and_the_next_goes_on_from_there(
    database: Database, x_api: XApi
) -> None:
    """A round that would outlive its activity's timeout stops after a batch and says how
    far it got (here: a round of no time at all stores one page of five at a time)."""
    account = x_account(database, x_api)
    for n in range(1, 13):
        x_api.tweet(n, f"@acme help {n}")
    rounds = PollActivities(database, RuleBook(), round_seconds=0)
    position = json.dumps({"mentions": {"since": "1"}})
    stored = []
    for _ in range(6):
        polled = rounds.poll_mentions(PollJob(account_id=account.id, since_id=position))
        stored.append(polled.stored)
        position = polled.since_id or position
    assert stored[:3] == [5, 5, 2] and sum(stored) == 12  # one page a round, none twice
