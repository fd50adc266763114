"""The posts triage flagged a public risk, by when they were received: a partial index of
those posts alone (a few in a hundred), which the KPI report's public-risk figures read
rather than every post of the window (`records.service_kpis.public_risk`). Each database
writes the condition as the report's query does (`IS 1`, `IS true`), so its planner sees
the index answers it.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_posts_public_risk",
        "posts",
        ["received_at"],
        sqlite_where=sa.text("public_risk IS 1"),
        postgresql_where=sa.text("public_risk IS true"),
    )


def downgrade() -> None:
    op.drop_index("ix_posts_public_risk", table_name="posts")
