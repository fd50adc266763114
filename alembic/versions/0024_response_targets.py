"""First-response targets and handle time (issue 23): each post keeps when its first reply
is due (`respond_by`: its arrival plus its queue's, or the rule set's, target for its
priority) and when it was last assigned (`assigned_at`: the start of its handle time); a
queue may set its own target minutes per priority. The inbox's most-urgent-first order
reads `respond_by` by an index, as every other order of the queue does.

Posts already stored get the default targets (the rule set's defaults when this was
written), so no post is left without a due time.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from datetime import UTC, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
# The targets of policies/rules/default.yaml (triage.response_minutes) in this revision.
DEFAULT_MINUTES = {"urgent": 30, "high": 120, "normal": 480, "low": 1440}
BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("respond_by", TS, nullable=True))
        batch.add_column(sa.Column("assigned_at", TS, nullable=True))
    with op.batch_alter_table("queues") as batch:
        batch.add_column(
            sa.Column("response_minutes", sa.JSON(), nullable=False, server_default="{}")
        )
    _backfill()
    with op.batch_alter_table("posts") as batch:
        batch.alter_column("respond_by", existing_type=TS, nullable=False)
    op.create_index("ix_posts_due_queue", "posts", ["respond_by", "id"])
    op.create_index("ix_posts_status_due", "posts", ["status", "respond_by", "id"])


def _backfill() -> None:
    connection = op.get_bind()
    posts = sa.table(
        "posts", sa.column("id"), sa.column("received_at", TS), sa.column("priority"),
        sa.column("respond_by", TS),
    )  # fmt: skip
    sqlite = connection.dialect.name == "sqlite"
    last = 0
    while True:
        rows = connection.execute(
            sa.select(posts.c.id, posts.c.received_at, posts.c.priority)
            .where(posts.c.id > last).order_by(posts.c.id).limit(BATCH)
        ).all()  # fmt: skip
        if not rows:
            return
        updates = []
        for post_id, received_at, priority in rows:
            due = received_at + timedelta(minutes=DEFAULT_MINUTES.get(priority, 480))
            if sqlite:  # SQLite keeps the UTC wall time, without a zone
                due = due.astimezone(UTC).replace(tzinfo=None) if due.tzinfo else due
            updates.append({"b_id": post_id, "b_due": due})
        connection.execute(
            posts.update().where(posts.c.id == sa.bindparam("b_id"))
            .values(respond_by=sa.bindparam("b_due")),
            updates,
        )  # fmt: skip
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_posts_status_due", table_name="posts")
    op.drop_index("ix_posts_due_queue", table_name="posts")
    with op.batch_alter_table("queues") as batch:
        batch.drop_column("response_minutes")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("assigned_at")
        batch.drop_column("respond_by")
