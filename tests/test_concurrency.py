"""Concurrent writers: one post per (channel, external_id), and a gapless, valid audit chain."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlmodel import func, select

from policies.versions import RuleBook
from records import audit, posts
from records.audit_models import AuditEvent
from records.db import Database
from records.fields import Channel
from records.post_models import Post, PostCreate


def body(external_id: str) -> PostCreate:
    return PostCreate(
        channel=Channel.x,
        external_id=external_id,
        author="@c",
        text=f"hello, about {external_id}",  # one author, different posts (not spam)
        url="https://x.example/1",
        received_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


RULES = RuleBook()  # the shipped rule set triages


def ingest(database: Database, external_id: str) -> tuple[int, bool]:
    with database.write_session() as session:
        post, created = posts.ingest(
            session, body(external_id), rules=RULES, actor="agent", actor_role="agent"
        )
        assert post.id is not None
        return post.id, created


def test_the_same_post_delivered_concurrently_is_stored_once(database: Database) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: ingest(database, "same"), range(24)))
    assert len({post_id for post_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with database.read_session() as session:
        assert session.exec(select(func.count()).select_from(Post)).one() == 1
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 1


def test_concurrent_writers_keep_the_audit_chain_gapless(database: Database) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: ingest(database, f"post-{n}"), range(60)))
    with database.read_session() as session:
        seqs = session.exec(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
        assert list(seqs) == list(range(1, 61))
        result = audit.verify(session)
        assert (result.ok, result.events_checked, result.first_bad_seq) == (True, 60, None)
