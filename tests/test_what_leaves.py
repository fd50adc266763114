"""What leaves is the text that was approved, or nothing (SQLite and PostgreSQL, through the
real worker and a fake X). A customer's erasure withdraws the replies to them that are
still open, so none is edited or posted after it; and the publisher holds the text it is
about to post against the approval's hash, so a text erased since (a reply already on its
way) or changed in the database by someone with access to it is not posted, and the
reason is on record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import bindparam, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from lifecycle.words import ERASURE_ACTOR, Role
from records import erasure, retention
from records.db import Database
from records.settings import Settings
from records.tables import DRAFTS, EVENTS, POSTS, STAGE_REVIEWS, VERSIONS
from tests.conftest import PASSWORD, Headers
from tests.fakes import FakeX, running_fake_x, x_account
from tests.helpers import Meanwhile, new_post, postgresql_only
from tests.test_approval_workflow import AGENT, COMMS, refused
from tests.test_publishers import PUB, REPLY, desk_on, draft_of
from workflows.approval import ResponseApproval
from workflows.contracts import (
    LOOK_AGAIN,
    DecisionRequest,
    EditRequest,
    PublishRequest,
    SubmitRequest,
    WithdrawRequest,
    workflow_id,
)
from workflows.publishing import PublishActivities

pytestmark = pytest.mark.temporal


def erase_the_customer(database: Database) -> None:
    """The erasure of the author of every post the desk makes (`insert_post`'s)."""
    with database.write() as c:
        erasure.erase_customer(c, "@customer", actor="adm", role="admin")


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with running_fake_x() as fake:
        yield fake


async def test_an_erased_customers_open_replies_are_withdrawn_and_say_nothing_more(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_x: FakeX,
) -> None:
    """An approved reply and one still being written, both to the customer: the erasure
    withdraws them on the record, and their workflows find it out at the next action, which
    is refused (nothing posted, no new text); the withdrawal and its reason are audited."""
    async with desk_on(temporal_env, database, make_user, x_account(fake_x, 1)) as desk:
        approved = await desk.approved()
        being_written = await desk.begun()
        writing = draft_of(being_written)
        erase_the_customer(database)
        _, why = await refused(approved.execute_update(ResponseApproval.publish, PUB))
        assert "withdrawn" in why
        edit = EditRequest(
            actor=AGENT, body="Hello again! Your refund is on its way.", expected_version=1
        )
        _, why = await refused(being_written.execute_update(ResponseApproval.edit, edit))
        assert "withdrawn" in why
        assert (await being_written.result()).status == "withdrawn"
    assert fake_x.tweets == []
    with database.engine.connect() as c:
        withdrawals = c.execute(
            select(EVENTS.c.draft_id, EVENTS.c.actor, EVENTS.c.payload)
            .where(EVENTS.c.action == "draft.withdrawn")
            .order_by(EVENTS.c.draft_id)
        ).all()
        bodies = c.execute(select(VERSIONS.c.body).where(VERSIONS.c.draft_id == writing)).scalars()
        assert list(bodies) == [retention.ERASED]
    assert [(w.draft_id, w.actor) for w in withdrawals] == [
        (draft_of(approved), "adm"),
        (writing, "adm"),
    ]
    assert all(json.loads(w.payload) == {"reason": erasure.WITHDRAWN} for w in withdrawals)


@pytest.mark.parametrize(
    ("attempt", "tweets", "said"),
    [(1, 0, "nothing is posted"), (2, 1, "may be on the platform")],
    ids=["first attempt", "retry"],
)
async def test_a_reply_claimed_for_publishing_when_its_customer_is_erased_is_not_posted(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_x: FakeX,
    monkeypatch: pytest.MonkeyPatch,
    attempt: int,
    tweets: int,
    said: str,
) -> None:
    """The erasure commits after the publisher claimed the reply (so the erasure leaves the
    draft to it) and before its request leaves: the publisher looks again, and nothing
    leaves, neither the text nor the placeholder that took its place. On a retry (X took
    the first request, its answer never came) the publication says the reply may already be
    on the platform."""
    fake_x.script = ["hang"] if attempt > 1 else []
    choosing = PublishActivities._publisher
    attempts: list[int] = []

    def erased_before_the_request(self: PublishActivities, *args: Any) -> Any:
        attempts.append(1)
        if len(attempts) == attempt:
            erase_the_customer(database)
        return choosing(self, *args)

    monkeypatch.setattr(PublishActivities, "_publisher", erased_before_the_request)
    async with desk_on(temporal_env, database, make_user, x_account(fake_x, 1)) as desk:
        handle = await desk.approved()
        result = await handle.execute_update(ResponseApproval.publish, PUB)
        assert len(attempts) == attempt and result.status == "publish_failed"
        with database.engine.connect() as c:
            post = c.execute(_POST_OF, {"draft": draft_of(handle)}).one()
        assert post.status == "assigned"  # its reply is still open: a publisher looks at it
        # The publisher abandons it (`may_withdraw`): nothing is left to answer the post.
        await handle.execute_update(ResponseApproval.withdraw, WithdrawRequest(actor=PUB.actor))
    assert [tweet["text"] for tweet in fake_x.tweets] == [REPLY] * tweets
    publication = desk.publication(draft_of(handle))
    assert (publication.status, publication.attempts) == ("failed", attempt - 1)
    assert "was erased" in publication.error and said in publication.error
    with database.engine.connect() as c:
        post = c.execute(_POST_OF, {"draft": draft_of(handle)}).one()
        last = c.execute(select(EVENTS.c.action, EVENTS.c.actor).order_by(EVENTS.c.seq.desc()))
        assert [tuple(e) for e in last.all()[:2]] == [
            ("post.dismissed", ERASURE_ACTOR),
            ("draft.withdrawn", "pub"),
        ]
    assert (post.status, post.dismissed_reason, post.dismissed_by) == (
        "dismissed",
        "erased",
        ERASURE_ACTOR,
    )


_POST_OF = select(POSTS.c.status, POSTS.c.dismissed_reason, POSTS.c.dismissed_by).where(
    POSTS.c.id
    == select(DRAFTS.c.post_id).where(DRAFTS.c.id == bindparam("draft")).scalar_subquery()
)


async def test_an_erasure_while_the_publisher_claims_the_reply_leaves_one_story(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_x: FakeX,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The erasure comes while the publisher is claiming the reply (PostgreSQL: SQLite has
    one writer at a time). Either the erasure waits and finds it claimed, and the publisher
    then finds the post erased; or it withdraws the draft first, and the claim finds the
    draft moved on. Never both: a draft on record as withdrawn stays withdrawn."""
    postgresql_only(database)
    checking = PublishActivities._recheck
    others: list[Meanwhile] = []

    def erase() -> None:
        erase_the_customer(database)

    def erased_meanwhile(self: PublishActivities, *args: Any) -> Any:
        if not others:
            others.append(Meanwhile(erase))
        return checking(self, *args)

    monkeypatch.setattr(PublishActivities, "_recheck", erased_meanwhile)
    async with desk_on(temporal_env, database, make_user, x_account(fake_x, 1)) as desk:
        handle = await desk.approved()
        try:
            await handle.execute_update(ResponseApproval.publish, PUB)
        except WorkflowUpdateFailedError as refused_:
            assert "withdrawn" in str(refused_.cause)
    assert others[0].done().error is None
    assert fake_x.tweets == []
    with database.engine.connect() as c:
        status = c.execute(
            select(DRAFTS.c.status).where(DRAFTS.c.id == draft_of(handle))
        ).scalar_one()  # fmt: skip
        withdrawn = c.execute(
            select(EVENTS.c.seq).where(EVENTS.c.action == "draft.withdrawn")
        ).all()  # fmt: skip
    assert status == ("withdrawn" if withdrawn else "publish_failed")


async def test_a_reply_in_review_when_its_customer_is_erased_leaves_review_as_withdrawn(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_x: FakeX,
) -> None:
    """As a withdrawal by its workflow would: no review stage left open, no review time
    counted on, and the post waits for no reply."""
    async with desk_on(temporal_env, database, make_user, x_account(fake_x, 1)) as desk:
        handle = await desk.begun()
        draft_id = draft_of(handle)
        submitted = await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
        assert not submitted.blocked
        erase_the_customer(database)
    with database.engine.connect() as c:
        draft = c.execute(select(DRAFTS).where(DRAFTS.c.id == draft_id)).one()
        stages = c.execute(select(STAGE_REVIEWS).where(STAGE_REVIEWS.c.draft_id == draft_id)).all()
        post = c.execute(select(POSTS.c.status).where(POSTS.c.id == draft.post_id)).scalar_one()
    assert (draft.status, draft.stage, draft.sla_due_at, draft.sla_breached) == (
        "withdrawn", None, None, False,
    )  # fmt: skip
    assert stages and all(s.closed_at is not None for s in stages)
    assert stages[-1].outcome == "withdrawn"
    assert post == "dismissed"


async def test_an_erasure_over_http_tells_the_withdrawn_drafts_workflows(
    client: httpx.AsyncClient,
    people: dict[str, Headers],
    make_user: Callable[..., str],
    live_settings: Settings,
    temporal_env: WorkflowEnvironment,
) -> None:
    """The draft in review has no alarm due for half an hour: told its record changed, its
    workflow reads it and ends withdrawn now, rather than at its next alarm or action."""
    post_id = await new_post(client, people["agent"], "You charged me twice!")
    made = await client.post(
        "/api/v1/drafts", headers=people["agent"], json={"post_id": post_id, "body": REPLY}
    )
    draft_id = made.json()["id"]
    submitted = await client.post(f"/api/v1/drafts/{draft_id}/submit", headers=people["agent"])
    assert submitted.json()["status"] == "in_review", submitted.text
    make_user("adm", Role.admin)
    token = await client.post("/api/v1/auth/token", data={"username": "adm", "password": PASSWORD})
    admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
    erased = await client.post(
        "/api/v1/customers/erase", json={"author": "@customer"}, headers=admin
    )
    assert erased.status_code == 200 and erased.json()["withdrawn"] == [draft_id], erased.text
    handle = temporal_env.client.get_workflow_handle(
        workflow_id(draft_id, live_settings.workflow_id_prefix)
    )
    ended = await asyncio.wait_for(handle.result(), timeout=20)
    assert ended["status"] == "withdrawn"


async def test_a_workflow_told_to_look_again_when_nothing_changed_keeps_what_it_holds(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_x: FakeX,
) -> None:
    """A publish time asked for during review lives in the workflow alone; a look at an
    unchanged record keeps it, and the approval schedules the reply for then."""
    async with desk_on(temporal_env, database, make_user, x_account(fake_x, 1)) as desk:
        handle = await desk.begun()
        await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=AGENT))
        at = datetime.now(UTC) + timedelta(seconds=2)
        await handle.execute_update(
            ResponseApproval.publish, PublishRequest(actor=PUB.actor, at=at)
        )
        await handle.signal(LOOK_AGAIN)
        decided = await handle.execute_update(
            ResponseApproval.decide,
            DecisionRequest(actor=COMMS, stage="comms", decision="approve", version=1),
        )
        assert decided.status == "scheduled"
        ended = await asyncio.wait_for(handle.result(), timeout=20)
    assert ended.status == "published" and len(fake_x.tweets) == 1
