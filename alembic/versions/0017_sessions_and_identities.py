"""Revocable sessions and identity-provider accounts (issue 20).

- `users.issuer`, `users.subject`: an account provisioned from an identity provider's
  token (its own namespace: never merged with a local account of the same name).
- `users.sessions_revoked_at`: tokens issued up to then are refused ("sign out everywhere";
  disabling an account sets it too).
- `revoked_tokens`: single tokens revoked by signing out, until they would have expired.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("issuer", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("subject", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("sessions_revoked_at", WHEN, nullable=True))
        batch.create_unique_constraint("uq_users_identity", ["issuer", "subject"])
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(length=64), primary_key=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("revoked_at", WHEN, nullable=False),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_identity", type_="unique")
        batch.drop_column("sessions_revoked_at")
        batch.drop_column("subject")
        batch.drop_column("issuer")
