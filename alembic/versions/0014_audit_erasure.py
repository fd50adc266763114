"""Erasing an audit event's content without breaking the proof.

`audit_events.erased`: the event's payload was erased (retention, a customer's request).
The payload becomes `{}`; its digest (`payload_sha256`), which the Merkle tree's leaf
commits to, stays. The guards let exactly that change through and nothing else: on
PostgreSQL the row trigger's function checks every other column is unchanged; on SQLite the
UPDATE trigger fires unless the update is that erasure.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "draft_id",
    "version",
    "content_sha256",
    "payload_sha256",
    "prev_hash",
    "hash",
    "event_key",
)
ERASURE = "NOT OLD.erased AND NEW.erased AND NEW.payload = '{}' AND " + " AND ".join(
    f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in KEPT
)
SQLITE_ERASURE = "OLD.erased = 0 AND NEW.erased = 1 AND NEW.payload = '{}' AND " + " AND ".join(
    f"NEW.{c} IS OLD.{c}" for c in KEPT
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
    # A plain ADD COLUMN: a batch operation would rebuild the table on SQLite, and with it
    # drop its other guard (audit_events_no_delete).
    op.add_column(
        "audit_events",
        sa.Column("erased", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    if postgres:
        op.execute(
            f"""
            CREATE FUNCTION audit_events_guard() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND {ERASURE} THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_guard()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            f"WHEN NOT ({SQLITE_ERASURE}) "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute("DROP FUNCTION audit_events_guard()")
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("erased")
    if postgres:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
    else:
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )
