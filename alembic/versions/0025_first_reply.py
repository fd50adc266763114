"""Each post keeps when its first reply went out (`first_replied_at`, set as a publication
to it is confirmed): the first-response outcome (`records.response_times`) then reads one
column of the post rather than grouping every publication ever made, which the queue
board did on each refresh.

Posts already answered get the time of their first confirmed publication.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("first_replied_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE posts SET first_replied_at = ("
        " SELECT min(publications.updated_at) FROM publications"
        " JOIN drafts ON drafts.id = publications.draft_id"
        " WHERE drafts.post_id = posts.id AND publications.status = 'confirmed')"
    )


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("first_replied_at")
