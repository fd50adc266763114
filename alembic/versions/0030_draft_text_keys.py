"""Each draft has a key that seals its texts on their way through Temporal
(`records.draft_texts`): an edit's text and a reviewer's comment are an update's input,
which the workflow's history keeps, and erasing the draft's words forgets the key.

A draft gets its key with its first sealed text, so the column is only added here: a
backfill would hold the table's lock for as long as it wrote, and a draft made meanwhile
by an API of the release before (an upgrade's processes are replaced one by one) would
have none all the same. The texts sent before stay as they were sent, in the histories
that hold them.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("text_key", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("text_key")
