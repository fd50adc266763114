"""Signed checkpoints of the audit tree (records.checkpoints), append-only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GUARD = "BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END"


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("tree_size", BigId, nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON "
            "audit_checkpoints FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for name, when in (("no_update", "UPDATE"), ("no_delete", "DELETE")):
            op.execute(
                f"CREATE TRIGGER audit_checkpoints_{name} BEFORE {when} ON audit_checkpoints "
                f"{GUARD}"
            )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
