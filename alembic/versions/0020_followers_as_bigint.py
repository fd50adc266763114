"""An identity's follower count is a 64-bit integer (issue 22): a post's author profile may
say up to 10^12, and on PostgreSQL a 32-bit column refused the whole batch it came in
(SQLite's INTEGER is 64-bit already).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "customer_identities", "followers", type_=sa.BigInteger(), existing_type=sa.Integer()
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "customer_identities", "followers", type_=sa.Integer(), existing_type=sa.BigInteger()
        )
