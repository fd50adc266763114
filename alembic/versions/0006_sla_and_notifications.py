"""Review SLAs (stage reviews, due and breached marks, the post's deadline on a draft) and
notifications (in-app, their outbound deliveries, each person's choices).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("sla_due_at", WHEN, nullable=True))
        batch.add_column(
            sa.Column("sla_breached", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("expires_at", WHEN, nullable=True))
    op.create_table(
        "stage_reviews",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("draft_id", BIG_ID, sa.ForeignKey("drafts.id"), nullable=False),
        sa.Column("review_round", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("opened_at", WHEN, nullable=False),
        sa.Column("due_at", WHEN, nullable=True),
        sa.Column("reminded_at", WHEN, nullable=True),
        sa.Column("breached_at", WHEN, nullable=True),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column("outcome", sa.String(24), nullable=True),
        sa.UniqueConstraint("draft_id", "review_round", "stage", name="uq_stage_reviews_round"),
    )
    op.create_index("ix_stage_reviews_opened", "stage_reviews", ["opened_at"])
    op.create_table(
        "notifications",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("draft_id", BIG_ID, nullable=True),
        sa.Column("post_id", BIG_ID, nullable=True),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("in_app", sa.Boolean(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("read_at", WHEN, nullable=True),
        sa.UniqueConstraint("event_key", "recipient", name="uq_notifications_event_recipient"),
    )
    op.create_index("ix_notifications_inbox", "notifications", ["recipient", "id"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("notification_id", BIG_ID, sa.ForeignKey("notifications.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.UniqueConstraint("notification_id", "channel", name="uq_notification_deliveries"),
    )
    op.create_table(
        "notification_preferences",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("event", sa.String(32), primary_key=True),
        sa.Column("channels", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_preferences")
    op.drop_table("notification_deliveries")
    op.drop_index("ix_notifications_inbox", "notifications")
    op.drop_table("notifications")
    op.drop_index("ix_stage_reviews_opened", "stage_reviews")
    op.drop_table("stage_reviews")
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("sla_breached")
        batch.drop_column("sla_due_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
