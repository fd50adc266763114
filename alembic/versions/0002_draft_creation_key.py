"""A draft remembers the Idempotency-Key it was created with, so a retried POST /drafts
returns the same draft.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("creation_key", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_drafts_creation_key", ["creation_key"])


def downgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.drop_constraint("uq_drafts_creation_key", type_="unique")
        batch.drop_column("creation_key")
