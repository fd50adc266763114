"""A post's drafts as they are made (`records.drafts.create`), on SQLite and PostgreSQL: one
open draft per post however many make one at the same moment (invariant 8), the others
told whose it is; the same request twice at once makes one draft, given to both; and a
draft is made in as few statements as its checks need."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from records import drafts
from records.db import Database
from records.errors import Conflict
from records.tables import DRAFTS, EVENTS
from tests.helpers import insert_post, statements_sent

WRITERS = 6


def drafted(database: Database, post_id: int, key: str | None = None) -> drafts.Created | str:
    """A draft of the post by the agent, or the refusal's reason."""
    try:
        with database.write() as connection:
            return drafts.create(
                connection, post_id=post_id, author="ann", body="We open at 9.", creation_key=key
            )
    except Conflict as refused:
        return str(refused)


def counted(database: Database) -> tuple[int, int]:
    with database.engine.connect() as connection:
        made = connection.execute(select(func.count()).select_from(DRAFTS)).scalar_one()
        events = connection.execute(select(func.count()).select_from(EVENTS)).scalar_one()
    return int(made), int(events)


def test_drafts_of_one_post_made_at_once_leave_one_and_the_others_are_told_whose(
    database: Database,
) -> None:
    with database.write() as connection:
        post_id = insert_post(connection)
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        answers = list(pool.map(lambda _: drafted(database, post_id), range(WRITERS)))
    made = [answer for answer in answers if isinstance(answer, drafts.Created)]
    assert len(made) == 1 and made[0].created, answers
    refusals = {answer for answer in answers if isinstance(answer, str)}
    expected = f"post {post_id} already has an open draft: draft {made[0].draft_id} by ann"
    assert refusals == {expected}
    assert counted(database) == (1, 1)  # one draft, one `draft.created`


def test_the_same_request_twice_at_once_makes_one_draft_for_both(database: Database) -> None:
    with database.write() as connection:
        post_id = insert_post(connection)
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        answers = list(pool.map(lambda _: drafted(database, post_id, "key-1"), range(WRITERS)))
    assert all(isinstance(answer, drafts.Created) for answer in answers), answers
    assert len({answer.draft_id for answer in answers if isinstance(answer, drafts.Created)}) == 1
    assert sum(isinstance(a, drafts.Created) and a.created for a in answers) == 1
    assert counted(database) == (1, 1)


@pytest.mark.parametrize("key", [None, "key-2"])
def test_a_draft_is_made_without_a_savepoint(database: Database, key: str | None) -> None:
    """The unique indexes decide who made the post's draft in the INSERT itself (`ON
    CONFLICT DO NOTHING`): no savepoint and its release, two round trips on PostgreSQL."""
    with database.write() as connection:
        post_id = insert_post(connection)
    with statements_sent(database) as sent:
        assert isinstance(drafted(database, post_id, key), drafts.Created)
    assert not [statement for statement in sent if "SAVEPOINT" in statement.upper()], sent
