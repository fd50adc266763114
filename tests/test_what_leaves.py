"""What leaves is the text that was approved, or nothing (SQLite and PostgreSQL, through the
real worker and a fake X): the publisher hashes the text it is about to post and holds it
against the approval's hash, so a text erased since (a customer's request) or changed in
the database by someone with access to it is not posted, and the reason is on record."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from records import retention
from records.db import Database
from records.tables import EVENTS, VERSIONS
from tests.fakes import FakeX, running_fake_x, x_account
from tests.test_publishers import PUB, desk_on, draft_of
from workflows.approval import ResponseApproval

pytestmark = pytest.mark.temporal


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with running_fake_x() as fake:
        yield fake


async def test_a_reply_approved_before_its_customer_was_erased_is_not_posted(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_x: FakeX,
) -> None:
    """The approved text is gone from the record: the publisher posts exactly the approved
    text or nothing, so nothing, and says why."""
    async with desk_on(temporal_env, database, make_user, x_account(fake_x, 1)) as desk:
        handle = await desk.approved()
        with database.write() as c:
            retention.erase_customer(c, "@customer", actor="adm", role="admin")
        result = await handle.execute_update(ResponseApproval.publish, PUB)
    assert result.status == "publish_failed"
    assert fake_x.tweets == []
    publication = desk.publication(draft_of(handle))
    assert publication.status == "failed" and "erased" in publication.error
    with database.engine.connect() as c:
        refused = c.execute(
            select(EVENTS.c.seq).where(EVENTS.c.action == "draft.publish_refused")
        ).all()  # fmt: skip
    assert len(refused) == 1


async def test_a_reply_changed_in_the_database_after_its_approval_is_not_posted(
    temporal_env: WorkflowEnvironment,
    database: Database,
    make_user: Callable[..., str],
    fake_x: FakeX,
) -> None:
    """Someone with write access to the database rewrites the approved version's text: the
    approval was of the other text, so nothing leaves."""
    async with desk_on(temporal_env, database, make_user, x_account(fake_x, 1)) as desk:
        handle = await desk.approved()
        with database.write() as c:
            c.execute(
                VERSIONS.update()
                .where(VERSIONS.c.draft_id == draft_of(handle))
                .values(body="We admit it was our fault; here is your refund.")
            )
        result = await handle.execute_update(ResponseApproval.publish, PUB)
    assert result.status == "publish_failed"
    assert fake_x.tweets == []
    publication = desk.publication(draft_of(handle))
    assert publication.status == "failed"
    assert "not the text that was approved" in publication.error
