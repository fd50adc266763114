"""The schema comes from Alembic alone, and matches the models exactly."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from records import audit, guards
from records.db import Database
from records.migrations import alembic_config, downgrade, upgrade
from records.tables import DRAFTS, POSTS


def test_upgrade_head_then_autogenerate_finds_no_difference(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert context.get_current_revision() is not None


def test_audit_events_refuse_update_delete_and_truncate_on_both_databases(
    database: Database,
) -> None:
    """Someone with a connection but not the rights to drop triggers cannot edit, delete or
    (PostgreSQL) truncate the trail; SQLite has no TRUNCATE, and its DELETE without a WHERE
    fires the row trigger."""
    with database.write_session() as session:
        audit.append(session, audit.NewEvent(actor="a", role="admin", action="test"))
    statements = ["UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"]
    if database.dialect == "postgresql":
        statements.append("TRUNCATE audit_events")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
            conn.execute(text(statement))
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_events")).scalars().all() == ["a"]


def test_the_migrations_make_a_service_role_that_cannot_rewrite_the_trail(
    postgres_admin: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With COUNTERSIGN_DB_SERVICE_ROLE, the migrations create the role the service runs as:
    it writes every table but only appends to the trail, and owns nothing, so it can switch
    no trigger off."""
    if postgres_admin is None:
        pytest.skip("PostgreSQL not reachable (a failure under CI=true)")
    suffix = uuid.uuid4().hex[:10]
    name, role = f"countersign_role_{suffix}", f"cs_service_{suffix}"
    with psycopg.connect(postgres_admin, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        monkeypatch.setenv("COUNTERSIGN_DB_SERVICE_ROLE", role)
        upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"SET ROLE {role}")
            conn.execute(
                "INSERT INTO audit_events (seq, at, actor, role, action, payload, prev_hash, "
                "hash) VALUES (1, now(), 'a', 'admin', 'test', '{}', 'p', 'h')"
            )
            conn.execute("UPDATE users SET display_name = 'x' WHERE false")  # other tables
            for statement in (
                "UPDATE audit_events SET actor = 'mallory'",
                "DELETE FROM audit_events",
                "TRUNCATE audit_events",
                "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
                "DROP TRIGGER audit_events_no_truncate ON audit_events",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    finally:
        with psycopg.connect(postgres_admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f"DROP ROLE IF EXISTS {role}")


@contextlib.contextmanager
def empty_databases(tmp_path: Path, postgres_admin: str | None) -> Iterator[list[str]]:
    """An empty SQLite file and (when PostgreSQL answers) an empty PostgreSQL database, for
    a test that runs the migrations itself; the PostgreSQL one is dropped after."""
    urls = [f"sqlite:///{tmp_path / 'fresh.db'}"]
    name = f"countersign_migrate_{uuid.uuid4().hex[:10]}"
    if postgres_admin is not None:
        with psycopg.connect(postgres_admin, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        urls.append(postgres_admin.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield urls
    finally:
        if postgres_admin is not None:
            with psycopg.connect(postgres_admin, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_freshly_migrated_database_has_every_guard(
    tmp_path: Path, postgres_admin: str | None
) -> None:
    """Straight after `upgrade` (before any test lifts and restores them), every guard is
    in place and refuses: a migration that rebuilt a table would have dropped its triggers
    silently (SQLite's batch mode does)."""
    with empty_databases(tmp_path, postgres_admin) as urls:
        for url in urls:
            upgrade(url)
            database = Database(url)
            try:
                with database.engine.connect() as conn:
                    if database.dialect == "postgresql":
                        found = set(
                            conn.execute(
                                text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
                            ).scalars()
                        )
                        wanted = {t for ts in guards.POSTGRES_TRIGGERS.values() for t in ts}
                    else:
                        found = set(
                            conn.execute(
                                text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                            ).scalars()
                        )
                        wanted = set(guards.SQLITE_TRIGGERS)
                assert wanted <= found, f"missing on {database.dialect}: {wanted - found}"
                with database.write_session() as session:
                    audit.append(session, audit.NewEvent(actor="a", role="admin", action="t"))
                with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as c:
                    c.execute(text("DELETE FROM audit_events"))
            finally:
                database.dispose()


def test_a_database_with_posts_and_drafts_upgrades_and_its_posts_get_their_due_time(
    tmp_path: Path, postgres_admin: str | None
) -> None:
    """An existing installation, not an empty one: 0024 rebuilds the posts table on SQLite
    (a column made NOT NULL) while drafts point at it, and gives every stored post its
    first-response due time by the targets of its day; down and up again keeps the rows."""
    received = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    with empty_databases(tmp_path, postgres_admin) as urls:
        for url in urls:
            upgrade(url, "0023")
            database = Database(url)
            try:
                with database.engine.begin() as conn:
                    for n, priority in enumerate(("urgent", "normal", "low"), 1):
                        conn.execute(POSTS.insert(), {  # the columns of 0023's posts
                            "id": n, "channel": "x", "external_id": f"old-{n}", "author": "@c",
                            "text": "hi", "url": "https://x.example/1", "received_at": received,
                            "priority": priority, "status": "new", "origin": "mention",
                            "replies_allowed": 1, "erased": False, "public_risk": False,
                            "created_at": received, "updated_at": received,
                        })  # fmt: skip
                    conn.execute(DRAFTS.insert(), {"post_id": 2, "author": "ana",
                                                   "status": "draft", "route": []})  # fmt: skip
                upgrade(url)
                with database.engine.connect() as conn:
                    due = dict(conn.execute(select(POSTS.c.priority, POSTS.c.respond_by)).all())
                    assert conn.execute(select(DRAFTS.c.post_id)).scalar_one() == 2
                assert due == {
                    "urgent": received + timedelta(minutes=30),
                    "normal": received + timedelta(hours=8),
                    "low": received + timedelta(days=1),
                }
                downgrade(url, "0023")
                # Up again as `alembic upgrade head` on the command line does (alembic/env.py
                # on its own, not handed a connection): the same care for references.
                standalone = alembic_config()
                standalone.set_main_option("sqlalchemy.url", url)
                command.upgrade(standalone, "head")
                with database.engine.connect() as conn:
                    assert conn.execute(select(func.count()).select_from(POSTS)).scalar() == 3
                    assert conn.execute(select(DRAFTS.c.post_id)).scalar_one() == 2
            finally:
                database.dispose()
