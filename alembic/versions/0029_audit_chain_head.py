"""On PostgreSQL, an append takes the chain's lock and reads its head in one round trip.

Every append (`records.audit.append_many`) takes the transaction-scoped advisory lock that
serialises appends and then reads the newest event, whose `seq` and `hash` the new events
follow: two statements, each a round trip, on every transition. `audit_chain_head` does
both on the server. It is VOLATILE, so its read takes a snapshot of its own after the lock
is held (at READ COMMITTED each query of a volatile function does): it sees every append
committed before the lock was granted, as the separate read did. Nothing else changes:
the lock, its key and the read are the same. SQLite needs neither: a write holds the
database's write lock from its first statement.

A function's query keeps the plan it was given on its first run in a session: planned on
an empty table, that was a scan of the whole table and a sort, kept as the table grew
(`tests/test_ingest_plans.py` saw it). Without sequential scans its plan is the primary
key read backwards, one row, at any size.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03
"""

import os
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION audit_chain_head(lock_key bigint)
        RETURNS TABLE (head_seq bigint, head_hash varchar)
        LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key);
            RETURN QUERY
                SELECT e.seq::bigint, e.hash::varchar
                FROM audit_events AS e ORDER BY e.seq DESC LIMIT 1;
        END
        $$
        """
    )
    role = os.environ.get("COUNTERSIGN_DB_SERVICE_ROLE", "")
    if role:  # as 0010 grants it the tables (PUBLIC may execute functions, unless revoked)
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
            raise ValueError(f"COUNTERSIGN_DB_SERVICE_ROLE {role!r} is not a plain role name")
        found = sa.text("SELECT 1 FROM pg_roles WHERE rolname = :role")
        if op.get_bind().execute(found, {"role": role}).first() is None:
            op.execute(f"CREATE ROLE {role} NOLOGIN")  # as 0010 makes it
        op.execute(f"GRANT EXECUTE ON FUNCTION audit_chain_head(bigint) TO {role}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_chain_head(bigint)")
