"""A Merkle tree over the audit events (RFC 6962 hashing), kept as events are appended.

- `audit_events.payload_sha256`: the digest of each event's payload; an event's leaf
  commits to it rather than to the payload, so content can be erased without breaking the
  proof (docs/audit-format.md).
- `audit_nodes`: every perfect subtree of the tree, level 0 being the leaves; append-only
  under the same guards as the events.

Existing events are backfilled: their payload digests and the tree over them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GUARD = "BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"


def _leaf(row: sa.Row) -> bytes:
    """The leaf bytes of docs/audit-format.md, as of this revision (its own copy)."""
    at = datetime.fromisoformat(row.at) if isinstance(row.at, str) else row.at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    when = at.isoformat(timespec="microseconds")
    document = {
        "action": row.action,
        "actor": row.actor,
        "at": when,
        "content_sha256": row.content_sha256,
        "draft_id": row.draft_id,
        "payload_sha256": hashlib.sha256(row.payload.encode()).hexdigest(),
        "role": row.role,
        "seq": row.seq,
        "version": row.version,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("idx", BigId, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
    )
    # The backfill rewrites nothing an auditor sees, but the guards refuse any UPDATE.
    if postgres:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("payload_sha256", sa.String(length=64), nullable=True))
    rows = bind.execute(
        sa.text(
            "SELECT seq, at, actor, role, action, draft_id, version, content_sha256, payload "
            "FROM audit_events ORDER BY seq"
        )
    ).all()
    stack: list[tuple[int, int, bytes]] = []  # the right edge: (level, index, hash)
    nodes: list[dict[str, object]] = []
    for index, row in enumerate(rows):
        bind.execute(
            sa.text("UPDATE audit_events SET payload_sha256 = :digest WHERE seq = :seq"),
            {"digest": hashlib.sha256(row.payload.encode()).hexdigest(), "seq": row.seq},
        )
        node = (0, index, hashlib.sha256(b"\x00" + _leaf(row)).digest())
        nodes.append({"level": 0, "idx": index, "hash": node[2].hex()})
        while stack and stack[-1][0] == node[0]:
            left = stack.pop()
            node = (node[0] + 1, node[1] >> 1, hashlib.sha256(b"\x01" + left[2] + node[2]).digest())
            nodes.append({"level": node[0], "idx": node[1], "hash": node[2].hex()})
        stack.append(node)
    if nodes:
        op.bulk_insert(
            sa.table("audit_nodes", sa.column("level"), sa.column("idx"), sa.column("hash")), nodes
        )
    if postgres:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        op.execute(
            "CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        guard = GUARD.format(table="audit_events")
        op.execute(f"CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events {guard}")
        guard = GUARD.format(table="audit_nodes")
        op.execute(f"CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes {guard}")
        op.execute(f"CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes {guard}")


def downgrade() -> None:
    op.drop_table("audit_nodes")
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("payload_sha256")
    if op.get_bind().dialect.name != "postgresql":
        guard = GUARD.format(table="audit_events")
        op.execute(f"CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events {guard}")
