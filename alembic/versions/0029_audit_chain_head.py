"""On PostgreSQL, an append takes the chain's lock and reads its head in one round trip.

Every append (`records.audit.append_many`) takes the transaction-scoped advisory lock that
serialises appends, then reads the newest event, whose `seq` and `hash` the new events
follow, and the tree's right edge that the new leaves pair with (unless the process wrote
it last itself): two or three statements, each a round trip, on every transition.
`audit_chain_head` does all of it on the server. It is given the head the process knows,
and answers the edge's nodes only when the head is another's.

It is VOLATILE, so its reads take a snapshot of their own after the lock is held (at READ
COMMITTED each query of a volatile function does): they see every append committed
before the lock was granted, as the separate reads did. The lock and its key are the same,
so processes of the release before and of this one exclude each other. SQLite needs none
of it: a write holds the database's write lock from its first statement.

A function's query keeps the plan it was given on its first run in a session: planned on
an empty table, the head's read was a scan of the whole table and a sort, kept as the
table grew (`tests/test_ingest_plans.py` saw it). Without sequential scans its plans are
the primary keys' indexes, a few rows at any size.

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
        CREATE FUNCTION audit_chain_head(lock_key bigint, known_seq bigint, known_hash varchar)
        RETURNS TABLE (
            head_seq bigint, head_hash varchar, node_level integer, node_idx bigint,
            node_hash varchar
        )
        LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $$
        DECLARE
            size bigint;
            newest varchar;
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key);
            SELECT e.seq, e.hash INTO size, newest
            FROM audit_events AS e ORDER BY e.seq DESC LIMIT 1;
            IF size IS NULL THEN
                RETURN;
            END IF;
            IF size = known_seq AND newest = known_hash THEN
                RETURN QUERY SELECT size, newest, NULL::integer, NULL::bigint, NULL::varchar;
                RETURN;
            END IF;
            -- The tree's right edge: one perfect subtree per bit of its size, the one of
            -- bit b at level b, index (size >> (b + 1)) * 2 (records.merkle.perfect_subtrees).
            RETURN QUERY
                SELECT size, newest, n.level, n.idx::bigint, n.hash::varchar
                FROM generate_series(0, 62) AS b
                JOIN audit_nodes AS n ON n.level = b AND n.idx = (size >> (b + 1)) * 2
                WHERE (size >> b) & 1 = 1;
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
        op.execute(f"GRANT EXECUTE ON FUNCTION audit_chain_head(bigint, bigint, varchar) TO {role}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_chain_head(bigint, bigint, varchar)")
