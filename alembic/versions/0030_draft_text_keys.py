"""Each draft has a key that seals its texts on their way through Temporal
(`records.draft_texts`): an edit's text and a reviewer's comment are an update's input,
which the workflow's history keeps, and erasing the draft's words forgets the key.

The drafts made before get a key each, except those whose words were erased already
(every version erased): their texts in a history stay as they were sent, in the clear,
which is what this closes for every draft from now on.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1_000


def upgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("text_key", sa.String(64), nullable=True))
    connection = op.get_bind()
    kept = sa.text(
        "SELECT id FROM drafts WHERE id > :after AND EXISTS (SELECT 1 FROM draft_versions v"
        " WHERE v.draft_id = drafts.id AND v.erased = :no) ORDER BY id LIMIT :batch"
    )
    give = sa.text("UPDATE drafts SET text_key = :key WHERE id = :id")
    after = 0
    while ids := connection.execute(kept, {"after": after, "no": False, "batch": BATCH}).all():
        keys = [{"id": row.id, "key": os.urandom(32).hex()} for row in ids]
        connection.execute(give, keys)
        after = ids[-1].id


def downgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("text_key")
