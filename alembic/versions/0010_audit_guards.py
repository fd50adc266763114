"""The audit trail is append-only in the database itself, on both databases.

PostgreSQL refused UPDATE and DELETE row by row (0001) but let TRUNCATE through, which fires
no row trigger: a statement-level trigger refuses it now. SQLite had no guard at all:
triggers abort UPDATE and DELETE (SQLite has no TRUNCATE; its DELETE without WHERE fires
row triggers too). Someone with the database file can still drop the triggers; what that
cannot hide is what the signed checkpoints outside the database commit to.

On PostgreSQL, with COUNTERSIGN_DB_SERVICE_ROLE set, it also creates that role (NOLOGIN:
grant it to the login the API and workers use) with the rights the service needs and no
more: it reads and writes every table, but only reads and appends to audit_events, and it
owns nothing, so it cannot switch a trigger off.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import os
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The migration's own copy (records.guards holds the current one, for the tests' tampering).
SQLITE_GUARDS = {
    "audit_events_no_update": "BEFORE UPDATE ON audit_events",
    "audit_events_no_delete": "BEFORE DELETE ON audit_events",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE TRIGGER audit_events_no_truncate
            BEFORE TRUNCATE ON audit_events
            FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()
            """
        )
        role = os.environ.get("COUNTERSIGN_DB_SERVICE_ROLE", "")
        if role:
            _service_role(role)
        return
    for name, when in SQLITE_GUARDS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )


def _service_role(role: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError(f"COUNTERSIGN_DB_SERVICE_ROLE {role!r} is not a plain role name")
    found = sa.text("SELECT 1 FROM pg_roles WHERE rolname = :role")
    if op.get_bind().execute(found, {"role": role}).first() is None:
        op.execute(f"CREATE ROLE {role} NOLOGIN")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {role}")
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        return
    for name in SQLITE_GUARDS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
