"""A draft's view, what every action answers (`records.draft_reads.view`): its current
text, its decisions oldest first and its latest publication, read in one statement, so in
one snapshot on either database (PostgreSQL answers each statement of a read from a
snapshot of its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from records import draft_reads, drafts
from records.db import Database
from records.tables import DECISIONS, DRAFTS, PUBLICATIONS, VERSIONS
from tests.helpers import REPLY, insert_post

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _decision(draft_id: int, stage: str, reviewer: str, at: datetime) -> dict[str, object]:
    return {
        "draft_id": draft_id, "version": 2, "review_round": 1, "stage": stage,
        "decision": "approved", "reviewer": reviewer, "role": stage, "comment": f"by {reviewer}",
        "at": at, "content_sha256": "c" * 64,
    }  # fmt: skip


def _publication(draft_id: int, version: int, status: str) -> dict[str, object]:
    return {
        "draft_id": draft_id, "version": version, "channel": "x", "status": status,
        "requested_by": "publisher", "attempts": 1, "external_id": f"tweet-{version}",
        "created_at": AT, "updated_at": AT,
    }  # fmt: skip


def test_the_view_has_the_current_text_every_decision_oldest_first_and_the_latest_publication(
    database: Database,
) -> None:
    with database.write() as c:
        draft_id = drafts.create(c, post_id=insert_post(c), author="agent", body=REPLY).draft_id
        other = drafts.create(c, post_id=insert_post(c), author="agent", body=REPLY).draft_id
        drafts.add_version(c, draft_id, 2, "The second text.", "agent")
        c.execute(DRAFTS.update().where(DRAFTS.c.id == draft_id).values(version=2))
        # Inserted out of order: the view orders them by when they were made.
        c.execute(DECISIONS.insert(), _decision(draft_id, "legal", "lee", AT + timedelta(hours=1)))
        c.execute(DECISIONS.insert(), _decision(draft_id, "comms", "cam", AT))
        c.execute(DECISIONS.insert(), _decision(other, "comms", "oz", AT))
        c.execute(PUBLICATIONS.insert(), _publication(draft_id, 1, "failed"))
        c.execute(PUBLICATIONS.insert(), _publication(draft_id, 2, "published"))
        c.execute(PUBLICATIONS.insert(), _publication(other, 1, "pending"))

    seen: list[str] = []
    with database.engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", lambda *call: seen.append(call[2]))
        view = draft_reads.view(connection, draft_id)
    assert len(seen) == 1, seen  # one statement: one snapshot, one round trip

    assert (view.version, view.body) == (2, "The second text.")
    assert [(d.stage, d.reviewer, d.comment) for d in view.decisions] == [
        ("comms", "cam", "by cam"),
        ("legal", "lee", "by lee"),
    ]
    assert view.decisions[0].at == AT
    assert view.publication is not None
    assert (view.publication.version, view.publication.status) == (2, "published")
    assert view.publication.external_id == "tweet-2"


def test_a_draft_with_no_decision_or_publication_has_none_in_its_view(database: Database) -> None:
    with database.write() as c:
        draft_id = drafts.create(c, post_id=insert_post(c), author="agent", body=REPLY).draft_id
        body = c.execute(VERSIONS.select().where(VERSIONS.c.draft_id == draft_id)).one().body
    with database.engine.connect() as connection:
        view = draft_reads.view(connection, draft_id)
    assert (view.decisions, view.publication, view.body, view.version) == ([], None, body, 1)
