"""The record that publishing re-checks, and one reply per post.

- `decisions.content_sha256` and `decisions.role`: what text a decision approved (so the
  publish activity can check every approval against the exact text it posts) and the role
  the reviewer used (a backup role on an overdue stage).
- `posts.replies_allowed`: how many public replies the post may get (1; a supervisor's
  explicit allowance of a follow-up raises it).
- `uq_drafts_open_per_post`: at most one open draft per post, enforced by the database,
  so two agents racing to draft one post cannot both win.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Open statuses (lifecycle.words.OPEN), spelt out: a migration keeps its own copy.
OPEN_DRAFT = "status NOT IN ('published', 'rejected', 'withdrawn', 'expired')"
CROWDED = (
    "SELECT post_id FROM drafts WHERE status NOT IN ('published', 'rejected', 'withdrawn', "
    "'expired') GROUP BY post_id HAVING COUNT(*) > 1"
)


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("role", sa.String(length=20), nullable=True))
    with op.batch_alter_table("posts") as batch:
        batch.add_column(
            sa.Column("replies_allowed", sa.Integer(), nullable=False, server_default="1")
        )
    # Decisions recorded before this revision approved the version's text of the time.
    op.execute(
        "UPDATE decisions SET content_sha256 = (SELECT v.content_sha256 FROM draft_versions v "
        "WHERE v.draft_id = decisions.draft_id AND v.version = decisions.version), role = stage"
    )
    crowded = op.get_bind().execute(sa.text(CROWDED)).scalars().all()
    if crowded:
        raise RuntimeError(
            "these posts have more than one open draft; withdraw all but one of each, then "
            f"migrate again: {sorted(crowded)}"
        )
    op.create_index(
        "uq_drafts_open_per_post",
        "drafts",
        ["post_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_DRAFT),
        postgresql_where=sa.text(OPEN_DRAFT),
    )


def downgrade() -> None:
    op.drop_index("uq_drafts_open_per_post", table_name="drafts")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("replies_allowed")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("role")
        batch.drop_column("content_sha256")
