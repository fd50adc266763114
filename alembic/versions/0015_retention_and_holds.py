"""Retention and legal hold.

- `legal_holds`: a hold on a draft, a post, a customer (a post author) or a time range,
  with why, who placed it and who lifted it; a held record is never erased.
- `erased` on draft versions and posts: their content was erased (retention, a
  customer's request); their hashes stay, in the audit log, and so does the proof.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "legal_holds",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("draft_id", BigId, nullable=True),
        sa.Column("post_id", BigId, nullable=True),
        sa.Column("customer", sa.String(length=200), nullable=True),
        sa.Column("since", WHEN, nullable=True),
        sa.Column("until", WHEN, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.Column("placed_at", WHEN, nullable=False),
        sa.Column("lifted_by", sa.String(length=64), nullable=True),
        sa.Column("lifted_at", WHEN, nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_legal_holds_active", "legal_holds", ["lifted_at", "scope"])
    for table in ("draft_versions", "posts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("erased", sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    for table in ("draft_versions", "posts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("erased")
    op.drop_index("ix_legal_holds_active", table_name="legal_holds")
    op.drop_table("legal_holds")
