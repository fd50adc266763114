"""Bluesky inbound against a local fake AppView (issue 22, items 2, 3, 4, 5, 9): mentions,
replies and quotes from the notifications, and posts with the brand's terms from search,
become posts once each, across pages, a rate limit and a worker restart; a post found by
both routes is stored once; replies join their thread's conversation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from records import channels
from records.account_models import ChannelAccountCreate
from records.db import Database
from records.tables import POSTS
from tests.fake_bluesky_inbound import FakeAppView, running_appview
from tests.helpers import eventually
from tests.test_bluesky import APP_PASSWORD, HANDLE
from workflows.background_contracts import (
    PollStart,
    poller_id,
)
from workflows.polling import MastodonPoller
from workflows.worker import ACTIVITY_THREADS, build_worker

pytestmark = pytest.mark.temporal


@pytest.fixture
def appview() -> Iterator[FakeAppView]:
    with running_appview() as fake:
        yield fake


def stored(database: Database) -> dict[str, tuple[str, int | None]]:
    with database.engine.connect() as c:
        rows = c.execute(
            select(POSTS.c.external_id, POSTS.c.origin, POSTS.c.conversation_id).where(
                POSTS.c.channel == "bluesky"
            )
        )
        return {r.external_id: (r.origin, r.conversation_id) for r in rows}


async def test_notifications_and_brand_posts_arrive_once_across_pages_limits_and_a_restart(
    temporal_env: WorkflowEnvironment, database: Database, appview: FakeAppView
) -> None:
    root = appview.post(1, "@acme.bsky.social my card is blocked")
    appview.post(2, "liked it", reason="like")  # not a post to us
    with database.write() as c:
        account = channels.create(
            c,
            ChannelAccountCreate(
                name="acme-sky", channel="bluesky",
                settings={"handle": HANDLE, "service": appview.url, "page_size": "3",
                          "timeout_seconds": "2", "listen_terms": "AcmeBank",
                          "listen_exclude": "hiring"},
                credentials={"app_password": APP_PASSWORD},
            ),
            actor="admin",
        )  # fmt: skip
    queue = f"poll-{uuid.uuid4().hex[:8]}"
    start = PollStart(account_id=account.id, since_id=None, interval_seconds=0.2)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            handle = await temporal_env.client.start_workflow(
                MastodonPoller.run, start, id=f"{queue}-{poller_id(account.id)}", task_queue=queue
            )
            assert await eventually(lambda: len(stored(database)) == 1)
            for n in range(3, 11):  # eight replies in the thread: three pages of three
                appview.post(n, f"still waiting {n}", reason="reply", reply_to=n - 1, root=1)
            appview.post(20, "AcmeBank ate my deposit", author="sam", reason=None)
            appview.post(21, "@acme.bsky.social AcmeBank app down?", author="lee")
            appview.post(22, "AcmeBank is hiring", author="hr", reason=None)
            appview.post(23, "a quote of yours", author="kim", reason="quote")
            appview.limit_after = 2  # the third read from now answers 429
            assert await eventually(lambda: len(stored(database)) == 12, seconds=30)
    appview.post(30, "thanks, sorted", reason="reply", reply_to=10, root=1)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor):
            assert await eventually(lambda: len(stored(database)) == 13, seconds=30)
            await asyncio.sleep(0.6)  # more rounds: nothing new, nothing again
    await handle.terminate("test over")

    posts = stored(database)
    assert len(posts) == 13  # 1 + 8 replies + the follow-up, sam, lee (twice found), kim
    by_text = {view["record"]["text"]: view["uri"] for view in appview.posts}
    assert posts[root][0] == "mention"
    assert posts[by_text["still waiting 5"]][0] == "reply"
    assert posts[by_text["AcmeBank ate my deposit"]][0] == "listening"
    assert posts[by_text["@acme.bsky.social AcmeBank app down?"]][0] == "mention"
    assert posts[by_text["a quote of yours"]][0] == "mention"
    assert by_text["AcmeBank is hiring"] not in posts  # an excluded word
    assert by_text["liked it"] not in posts  # a like is no post to us
    thread = {posts[by_text[f"still waiting {n}"]][1] for n in range(3, 11)}
    assert thread == {posts[root][1]} == {posts[by_text["thanks, sorted"]][1]}
    assert any("cursor=" in path for path in appview.requests)  # older pages were read
