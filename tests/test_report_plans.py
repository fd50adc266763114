"""The KPI report's public-risk figures read the flagged posts by their partial index
(`ix_posts_public_risk`), not every post of the window (issue 24: `/kpis` at 10,000
drafts), on SQLite and on PostgreSQL with its tables grown and analyzed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from records import service_kpis
from records.db import Database
from records.migrations import upgrade
from records.report_sql import Window
from records.types import utcnow
from tests.helpers import explained
from tests.test_ingest_plans import grown  # noqa: F401 - the grown PostgreSQL database


def plans(connection: Connection, explain: str) -> list[str]:
    """The plan of each statement the public-risk figures run, read with `explain`."""
    with explained(connection, explain) as found:
        service_kpis.public_risk(connection, Window(), utcnow())
    return [plan for _, plan in found]


def test_on_postgresql_the_public_risk_figures_read_the_flagged_posts_index(
    grown: Database,  # noqa: F811
) -> None:
    with grown.engine.connect() as connection:  # a few in a hundred flagged, then undone
        connection.execute(text("UPDATE posts SET public_risk = true WHERE id % 100 = 0"))
        connection.execute(text("ANALYZE posts"))
        found = plans(connection, "EXPLAIN")
        connection.rollback()
    assert len(found) == 2 and all("ix_posts_public_risk" in plan for plan in found), found


def test_on_sqlite_the_public_risk_figures_read_the_flagged_posts_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    upgrade(url)
    database = Database(url)
    with database.engine.connect() as connection:
        found = plans(connection, "EXPLAIN QUERY PLAN")
    database.dispose()
    assert len(found) == 2 and all("ix_posts_public_risk" in plan for plan in found), found
