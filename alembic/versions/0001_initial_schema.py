"""Initial schema: users and roles, posts, drafts and their versions, decisions,
publications, and the append-only audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
# 64-bit ids; on SQLite only the exact type INTEGER makes a primary key the (64-bit) rowid.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(120), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "user_roles",
        sa.Column(
            "user_id",
            ID,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(20), primary_key=True),
    )
    op.create_index("ix_user_roles_role", "user_roles", ["role"])

    op.create_table(
        "posts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("channel", "external_id", name="uq_posts_channel_external_id"),
    )
    op.create_index("ix_posts_queue", "posts", ["received_at", "id"])
    for column in ("status", "channel", "assignee", "priority"):
        op.create_index(f"ix_posts_{column}_queue", "posts", [column, "received_at", "id"])

    op.create_table(
        "drafts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("post_id", ID, sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("stage", sa.String(20), nullable=True),
        sa.Column("stage_entered_at", TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("review_round", sa.Integer(), nullable=False),
        sa.Column("route", sa.JSON(), nullable=False),
        sa.Column("template_id", sa.String(100), nullable=True),
        sa.Column("template_version", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index(
        "ix_drafts_review_queue", "drafts", ["status", "stage", "stage_entered_at", "id"]
    )
    op.create_index("ix_drafts_author", "drafts", ["author", "id"])
    op.create_index("ix_drafts_post", "drafts", ["post_id"])
    op.create_index("ix_drafts_status", "drafts", ["status", "id"])

    op.create_table(
        "draft_versions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("draft_id", ID, sa.ForeignKey("drafts.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("route", sa.JSON(), nullable=False),
        sa.Column("ruleset_version", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("draft_id", "version", name="uq_draft_versions_draft_version"),
    )

    op.create_table(
        "decisions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("draft_id", ID, sa.ForeignKey("drafts.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("review_round", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("draft_id", "review_round", "stage", name="uq_decisions_round_stage"),
    )
    op.create_index("ix_decisions_reviewer", "decisions", ["reviewer", "at"])

    op.create_table(
        "publications",
        sa.Column("id", ID, primary_key=True),
        sa.Column("draft_id", ID, sa.ForeignKey("drafts.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("scheduled_at", TS, nullable=True),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("external_url", sa.String(2048), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("draft_id", "version", name="uq_publications_draft_version"),
    )
    op.create_index("ix_publications_status", "publications", ["status", "scheduled_at"])

    op.create_table(
        "audit_events",
        sa.Column("seq", ID, primary_key=True, autoincrement=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("draft_id", ID, nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=True),
        sa.UniqueConstraint("event_key", name="uq_audit_events_event_key"),
    )
    op.create_index("ix_audit_events_draft", "audit_events", ["draft_id", "seq"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "seq"])
    op.create_index("ix_audit_events_action", "audit_events", ["action", "seq"])
    op.create_index("ix_audit_events_at", "audit_events", ["at", "seq"])

    if op.get_bind().dialect.name == "postgresql":
        # The audit trail is append-only at the database too, whatever the application does.
        op.execute(
            """
            CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            """
            CREATE TRIGGER audit_events_append_only
            BEFORE UPDATE OR DELETE ON audit_events
            FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    for table in (
        "audit_events",
        "publications",
        "decisions",
        "draft_versions",
        "drafts",
        "posts",
        "user_roles",
        "users",
    ):
        op.drop_table(table)
