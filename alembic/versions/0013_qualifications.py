"""A reviewer's qualification (e.g. a registered-principal id), held on the user and
captured with each decision at sign-off (FINRA 2210(b)(4) asks for the approving
principal with each retail communication).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("users", "decisions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("qualification", sa.String(length=100), nullable=True))


def downgrade() -> None:
    for table in ("users", "decisions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("qualification")
