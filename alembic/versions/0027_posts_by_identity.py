"""An identity's posts, by the identity: adopting a handle-only identity's platform id
(`records.ingest`) and unlinking an identity from a customer (`records.customers`) each
find them, and read every post to without this index.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_posts_identity", "posts", ["identity_id"])


def downgrade() -> None:
    op.drop_index("ix_posts_identity", table_name="posts")
