"""The schema comes from Alembic alone, and matches the models exactly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from records import audit
from records.db import Database


def test_upgrade_head_then_autogenerate_finds_no_difference(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert context.get_current_revision() is not None


def test_audit_events_refuse_update_and_delete_on_postgresql(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's; SQLite relies on verify")
    with database.write_session() as session:
        audit.append(session, audit.NewEvent(actor="a", role="admin", action="test"))
    for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
            conn.execute(text(statement))
