"""PostgreSQL tells every listening process when an account changes
(`records.account_changes`): after any statement on `users`, `user_roles` or
`revoked_tokens`, a notification on the channel `countersign_accounts`, sent when the
transaction commits (and not at all if it rolls back). On `users`, an UPDATE notifies only
when it sets a column the standing is read by or holds.

An API process keeps its callers' standing (`api.standings`) only while it listens, and
forgets all of it on each notification: a role taken away, an account disabled or a
session ended by another process applies there as soon as the notification arrives,
without a read of the account on every request. A statement-level trigger sends one
notification per statement (PostgreSQL folds a transaction's identical ones into one),
whatever it changed: every standing is forgotten, which is all a listener needs to know.

SQLite has no notifications; its processes read the account on every request.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "countersign_accounts"  # records.account_changes' CHANNEL, as of this revision
TABLES = ("users", "user_roles", "revoked_tokens")  # and its TABLES


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION countersign_accounts_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        # On users, only an UPDATE of what a standing is read by or holds: a person's
        # e-mail or qualification changed forgets nothing.
        updated = "UPDATE OF username, issuer, subject, disabled, sessions_revoked_at"
        op.execute(
            f"CREATE TRIGGER {table}_changed "
            f"AFTER INSERT OR {updated if table == 'users' else 'UPDATE'} OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION countersign_accounts_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS countersign_accounts_changed()")
