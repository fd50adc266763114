"""A person's unread in-app notifications, by id: a partial index of those alone, which
the inbox's unread count and its unread list read (`records.notifications.inbox`), rather
than every notification the person ever had (a busy reviewer's thousands: each inbox
request visited them all). Each database writes the condition as the query does (`IS 1`,
`IS true`), so its planner sees the index answers it.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_notifications_unread",
        "notifications",
        ["recipient", "id"],
        sqlite_where=sa.text("in_app IS 1 AND read_at IS NULL"),
        postgresql_where=sa.text("in_app IS true AND read_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_unread", table_name="notifications")
