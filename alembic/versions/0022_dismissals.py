"""Dismissal with a reason (issue 23): a post that needs no reply keeps why (spam, praise
acknowledged, duplicate, off-topic, handled elsewhere), the note, who dismissed it (a
person, or triage) and when, until a supervisor restores it.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("dismissed_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("dismissed_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("dismissed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        for column in ("dismissed_at", "dismissed_by", "dismissed_note", "dismissed_reason"):
            batch.drop_column(column)
