"""Channel credentials sealed at rest (issue 20).

`channel_accounts.credentials` (plain JSON) becomes `sealed_credentials`: the same JSON
sealed with AES-256-GCM under COUNTERSIGN_SECRETS_KEY (`records.vault`), bound to its
account. Existing rows are sealed here, with the key of the settings this runs with.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from records.channels import credentials_place
from records.settings import load_settings
from records.vault import Vault

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _place(row: sa.Row) -> str:  # type: ignore[type-arg]
    settings = row.settings if isinstance(row.settings, dict) else json.loads(row.settings)
    return credentials_place(row.name, row.channel, settings)


def upgrade() -> None:
    with op.batch_alter_table("channel_accounts") as batch:
        batch.add_column(sa.Column("sealed_credentials", sa.Text(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, name, channel, settings, credentials FROM channel_accounts")
    ).all()
    if rows:
        vault = Vault.of(load_settings())
        for row in rows:
            plain = (
                row.credentials
                if isinstance(row.credentials, dict)
                else json.loads(row.credentials)
            )
            connection.execute(
                sa.text("UPDATE channel_accounts SET sealed_credentials = :sealed WHERE id = :id"),
                {"sealed": vault.seal_json(plain, _place(row)), "id": row.id},
            )
    with op.batch_alter_table("channel_accounts") as batch:
        batch.alter_column("sealed_credentials", existing_type=sa.Text(), nullable=False)
        batch.drop_column("credentials")


def downgrade() -> None:
    with op.batch_alter_table("channel_accounts") as batch:
        batch.add_column(sa.Column("credentials", sa.JSON(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, name, channel, settings, sealed_credentials FROM channel_accounts")
    ).all()
    if rows:
        vault = Vault.of(load_settings())
        for row in rows:
            plain = vault.open_json(row.sealed_credentials, _place(row))
            connection.execute(
                sa.text("UPDATE channel_accounts SET credentials = :plain WHERE id = :id"),
                {"plain": json.dumps(plain), "id": row.id},
            )
    with op.batch_alter_table("channel_accounts") as batch:
        batch.alter_column("credentials", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("sealed_credentials")
