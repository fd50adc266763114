"""Failed sign-in counters, shared by every API process (issue 20).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_counters",
        sa.Column("key", sa.String(length=200), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_sign_in_counters_expires_at", "sign_in_counters", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_counters_expires_at", table_name="sign_in_counters")
    op.drop_table("sign_in_counters")
