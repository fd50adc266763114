"""Triage on arrival (issue 23): each post keeps what triage found and why — its topic,
language, sentiment, reach, public risk and spam signal, and the reasons in words — and
the queue can be filtered by topic as by channel or priority (an index ending in the
keyset order, as the others).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("topic", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("sentiment", sa.Float(), nullable=True))
        batch.add_column(sa.Column("reach", sa.String(length=8), nullable=True))
        batch.add_column(
            sa.Column("public_risk", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("spam", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("triage", sa.JSON(), nullable=True))
    op.create_index("ix_posts_topic_queue", "posts", ["topic", "received_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_posts_topic_queue", table_name="posts")
    with op.batch_alter_table("posts") as batch:
        for column in ("triage", "spam", "public_risk", "reach", "sentiment", "language", "topic"):
            batch.drop_column(column)
