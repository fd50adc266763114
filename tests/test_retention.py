"""Retention and legal hold (SQLite and PostgreSQL): the purge erases what has outlived its
period and nothing a hold covers; a customer's erasure request erases their content; and
after either, the audit log still verifies against checkpoints signed before."""

from __future__ import annotations

import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from countersign import offline_verifier
from lifecycle.words import Role
from records import audit, checkpoints, drafts, erasure, evidence, retention
from records.audit_models import HoldCreate, HoldScope
from records.db import Database
from records.errors import Conflict
from records.settings import Settings
from records.tables import EVENTS, POSTS, VERSIONS
from records.types import utcnow
from tests.helpers import eventually, insert_post
from tests.test_audit_checkpoints import SIGNER, sign
from workflows.background_contracts import (
    PurgeStart,
)
from workflows.checkpointing import RetentionPurge
from workflows.worker import ACTIVITY_THREADS, build_worker

DAYS = retention.retention_days({})
LATER = utcnow() + timedelta(days=7 * 365)  # everything written now is old by then


def a_draft(database: Database, author: str = "@customer", text: str = "Hello?") -> tuple[int, int]:
    """A post by `author` and an (unpublished) draft replying to it; their ids."""
    with database.write() as c:
        post_id = insert_post(c, text=text, external_id=uuid.uuid4().hex)
        c.execute(POSTS.update().where(POSTS.c.id == post_id).values(author=author))
        audit.append(
            c,
            audit.NewEvent(
                actor="a", role="agent", action="post.received", payload={"post_id": post_id}
            ),
        )
        draft_id = drafts.create(c, post_id=post_id, author="agent", body="Reply text").draft_id
    return post_id, draft_id


def state(database: Database, post_id: int, draft_id: int) -> tuple[bool, bool, str]:
    """(post erased, draft's versions erased, the post's text)."""
    with database.engine.connect() as c:
        post = c.execute(select(POSTS.c.erased, POSTS.c.text).where(POSTS.c.id == post_id)).one()
        versions = (
            c.execute(select(VERSIONS.c.erased).where(VERSIONS.c.draft_id == draft_id))
            .scalars()
            .all()
        )
    return bool(post.erased), all(versions), post.text


def verifies(database: Database, sink: Path) -> bool:
    with database.read_session() as session:
        held = checkpoints.held(session.connection(), SIGNER, [sink])
        return audit.verify(session, checkpoints=held.signed).ok


def test_the_purge_erases_what_expired_and_keeps_the_proof(
    database: Database, tmp_path: Path
) -> None:
    sink = tmp_path / "checkpoints"
    post_id, draft_id = a_draft(database)
    sign(database, [sink])
    with database.write() as c:
        assert retention.purge(c, DAYS) == retention.Erased()  # nothing is old yet
        erased = retention.purge(c, DAYS, now=LATER)
    assert erased.posts == 1 and erased.versions == 1 and erased.events >= 2
    assert state(database, post_id, draft_id) == (True, True, retention.ERASED)
    assert verifies(database, sink)
    with database.engine.connect() as c:
        last = c.execute(select(EVENTS.c.action).order_by(EVENTS.c.seq.desc()).limit(1)).scalar()
    assert last == "retention.purged"


@pytest.mark.parametrize(
    "scope", [HoldScope.draft, HoldScope.post, HoldScope.customer, HoldScope.range]
)
def test_a_hold_keeps_what_it_covers_until_it_is_lifted(
    database: Database, scope: HoldScope
) -> None:
    post_id, draft_id = a_draft(database, author="@held")
    other_post, other_draft = a_draft(database, author="@free")
    target = {
        HoldScope.draft: {"draft_id": draft_id},
        HoldScope.post: {"post_id": post_id},
        HoldScope.customer: {"customer": "@held"},
        HoldScope.range: {
            "since": utcnow() - timedelta(hours=1),
            "until": utcnow() + timedelta(hours=1),
        },
    }[scope]
    with database.write() as c:
        hold = retention.place(
            c,
            HoldCreate(scope=scope, reason="litigation 2026-17", **target),
            actor="aud",
            role="auditor",
        )
        retention.purge(c, DAYS, now=LATER)
    assert state(database, post_id, draft_id)[:2] == (False, False)
    if scope != HoldScope.range:  # the range holds both
        assert state(database, other_post, other_draft)[:2] == (True, True)
    with database.write() as c:
        retention.lift(c, hold.id, "settled", actor="aud", role="auditor")
        retention.purge(c, DAYS, now=LATER)
    assert state(database, post_id, draft_id)[:2] == (True, True)
    with database.engine.connect() as c:
        actions = (
            c.execute(
                select(EVENTS.c.action).where(EVENTS.c.action.like("hold.%")).order_by(EVENTS.c.seq)
            )
            .scalars()
            .all()
        )
    assert actions == ["hold.placed", "hold.lifted"]


def test_an_erased_customers_events_still_verify(database: Database, tmp_path: Path) -> None:
    sink = tmp_path / "checkpoints"
    jo_post, jo_draft = a_draft(database, author="@jo", text="My account 12345 is wrong")
    other_post, other_draft = a_draft(database, author="@sam")
    sign(database, [sink])
    with database.write() as c:
        erased = erasure.erase_customer(c, "@jo", actor="adm", role="admin")
    assert erased.posts == 1 and erased.versions == 1 and erased.events >= 2
    assert state(database, jo_post, jo_draft) == (True, True, retention.ERASED)
    assert state(database, other_post, other_draft)[:2] == (False, False)
    assert verifies(database, sink)
    with database.engine.connect() as c:
        texts = c.execute(select(POSTS.c.text, POSTS.c.author)).all()
        assert all("12345" not in t.text and t.author != "@jo" for t in texts)
    with database.write() as c:
        retention.place(
            c,
            HoldCreate(scope=HoldScope.customer, customer="@sam", reason="subpoena"),
            actor="aud",
            role="auditor",
        )
    with pytest.raises(Conflict, match="hold"), database.write() as c:
        erasure.erase_customer(c, "@sam", actor="adm", role="admin")


def test_holds_over_http(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., dict[str, str]],
    database: Database,
) -> None:
    make_user("aud", Role.auditor)
    make_user("ann", Role.agent)
    make_user("adm", Role.admin)
    auditor, agent, admin = login("aud"), login("ann"), login("adm")
    post_id, _ = a_draft(database)
    body = {"scope": "post", "post_id": post_id, "reason": "regulator's request 7"}
    assert app_client.post("/api/v1/holds", json=body, headers=agent).status_code == 403
    mixed = app_client.post("/api/v1/holds", json={**body, "draft_id": 1}, headers=auditor)
    assert mixed.status_code == 422 and "names post_id" in mixed.text
    placed = app_client.post("/api/v1/holds", json=body, headers=auditor)
    assert placed.status_code == 201 and placed.json()["placed_by"] == "aud"
    hold_id = placed.json()["id"]
    assert [h["id"] for h in app_client.get("/api/v1/holds", headers=auditor).json()["items"]] == [
        hold_id
    ]
    lifted = app_client.post(
        f"/api/v1/holds/{hold_id}/lift", json={"reason": "closed"}, headers=admin
    )
    assert lifted.status_code == 200 and lifted.json()["lifted_by"] == "adm"
    again = app_client.post(
        f"/api/v1/holds/{hold_id}/lift", json={"reason": "closed"}, headers=admin
    )
    assert again.status_code == 409
    erased = app_client.post("/api/v1/customers/erase", json={"author": "@customer"}, headers=admin)
    assert erased.status_code == 200
    assert (erased.json()["posts"], len(erased.json()["withdrawn"])) == (1, 1)  # its draft
    assert app_client.post("/api/v1/retention/purge", headers=admin).json() == {
        "posts": 0,
        "versions": 0,
        "events": 0,
        "withdrawn": [],
        "dismissed": 0,
    }


def test_an_erased_drafts_evidence_package_still_verifies(
    database: Database, tmp_path: Path
) -> None:
    _, draft_id = a_draft(database, author="@gone")
    with database.write() as c:
        erasure.erase_customer(c, "@gone", actor="adm", role="admin")
        data = evidence.package(
            c, draft_id, SIGNER, render_pdf=lambda _summary: b"%PDF-", ruleset_text=lambda _v: None
        )
    package = tmp_path / "evidence.zip"
    package.write_bytes(data)
    name, public = offline_verifier.parse_key(SIGNER.verifier_key)
    assert offline_verifier.verify_evidence(package, name, public).startswith("ok:")
    with zipfile.ZipFile(package) as archive:
        assert "versions/v1.txt" not in archive.namelist()  # the text is gone; its hash is not


@pytest.mark.temporal
async def test_the_purge_runs_on_a_durable_timer(
    temporal_env: WorkflowEnvironment, database: Database, settings: Settings
) -> None:
    """`RetentionPurge`: a Temporal timer, not a cron job, runs the purge each interval."""
    queue = f"purge-{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(update={"task_queue": queue})
    post_id, draft_id = a_draft(database)
    everything = {"audit": 0, "published": 0, "unpublished": 0, "posts": 0}
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, database, executor, settings=settings):
            handle = await temporal_env.client.start_workflow(
                RetentionPurge.run,
                PurgeStart(every_seconds=0.3, days=everything),
                id=f"{queue}-retention-purge",
                task_queue=queue,
            )
            try:
                assert await eventually(
                    lambda: state(database, post_id, draft_id)[:2] == (True, True)
                )
            finally:
                await handle.terminate("test over")
