"""Customers, their channel identities and notes, and conversations (issue 22).

Every post gets its origin (default `webhook`), the platform ids of its parent and thread
root, its author's id, and the identity, customer and conversation it belongs to. Posts
stored before this revision are given them here: an identity per (channel, author), a
customer per identity, a conversation per post.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _stamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", ID, primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("merged_into", ID, sa.ForeignKey("customers.id"), nullable=True),
        sa.Column("crm_id", sa.String(200), nullable=True),
        sa.Column("crm_tier", sa.String(64), nullable=True),
        sa.Column("crm_value", sa.String(64), nullable=True),
        sa.Column("crm_checked_at", TS, nullable=True),
        *_stamps(),
    )
    op.create_index("ix_customers_merged_into", "customers", ["merged_into"])
    op.create_table(
        "customer_identities",
        sa.Column("id", ID, primary_key=True),
        sa.Column("customer_id", ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("author_id", sa.String(200), nullable=False),
        sa.Column("handle", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("followers", sa.Integer(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=True),
        sa.Column("profile_url", sa.String(2048), nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("seen_at", TS, nullable=False),
        *_stamps(),
        sa.UniqueConstraint("channel", "author_id", name="uq_identities_channel_author"),
    )
    op.create_index("ix_identities_customer", "customer_identities", ["customer_id"])
    op.create_table(
        "customer_notes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("customer_id", ID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_customer_notes_customer", "customer_notes", ["customer_id", "id"])
    op.create_table(
        "conversations",
        sa.Column("id", ID, primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("root_id", sa.String(200), nullable=False),
        sa.Column("identity_id", ID, sa.ForeignKey("customer_identities.id"), nullable=False),
        sa.Column("customer_id", ID, sa.ForeignKey("customers.id"), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_post_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint(
            "channel", "root_id", "identity_id", name="uq_conversations_channel_root_identity"
        ),
    )
    op.create_index("ix_conversations_customer", "conversations", ["customer_id", "last_post_at"])
    with op.batch_alter_table("posts") as batch:
        batch.add_column(
            sa.Column("origin", sa.String(16), nullable=False, server_default="webhook")
        )
        batch.add_column(sa.Column("in_reply_to", sa.String(200), nullable=True))
        batch.add_column(sa.Column("root_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("author_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("identity_id", ID, nullable=True))
        batch.add_column(sa.Column("customer_id", ID, nullable=True))
        batch.add_column(sa.Column("conversation_id", ID, nullable=True))
        batch.create_foreign_key(
            "fk_posts_identity", "customer_identities", ["identity_id"], ["id"]
        )
        batch.create_foreign_key("fk_posts_customer", "customers", ["customer_id"], ["id"])
        batch.create_foreign_key(
            "fk_posts_conversation", "conversations", ["conversation_id"], ["id"]
        )
        batch.create_index("ix_posts_conversation", ["conversation_id", "received_at", "id"])
        batch.create_index("ix_posts_customer", ["customer_id", "received_at", "id"])
    op.create_index("ix_publications_external", "publications", ["channel", "external_id"])
    _backfill()


def _backfill() -> None:
    """Each stored post its identity (one per channel and author), customer and
    conversation; an erased post none (its author is gone, and is no one)."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            sa.column("id"), sa.column("channel"), sa.column("external_id"),
            sa.column("author"), sa.column("received_at"),
        )
        .select_from(sa.table("posts"))
        .where(sa.column("erased").is_not(True))
        .order_by(sa.column("id"))
    ).all()  # fmt: skip
    identities: dict[tuple[str, str], tuple[int, int]] = {}
    for row in rows:
        key = (row.channel, row.author)
        if key not in identities:
            customer_id = connection.execute(
                sa.text(
                    "INSERT INTO customers (display_name, created_at, updated_at) "
                    "VALUES (:name, :at, :at) RETURNING id"
                ),
                {"name": row.author, "at": row.received_at},
            ).scalar_one()
            identity_id = connection.execute(
                sa.text(
                    "INSERT INTO customer_identities (customer_id, channel, author_id, handle,"
                    " seen_at, created_at, updated_at) VALUES (:customer, :channel, :author,"
                    " :author, :at, :at, :at) RETURNING id"
                ),
                {
                    "customer": customer_id,
                    "channel": row.channel,
                    "author": row.author,
                    "at": row.received_at,
                },
            ).scalar_one()
            identities[key] = (identity_id, customer_id)
        identity_id, customer_id = identities[key]
        conversation_id = connection.execute(
            sa.text(
                "INSERT INTO conversations (channel, root_id, identity_id, customer_id,"
                " started_at, last_post_at, created_at) VALUES (:channel, :root, :identity,"
                " :customer, :at, :at, :at) RETURNING id"
            ),
            {
                "channel": row.channel,
                "root": row.external_id,
                "identity": identity_id,
                "customer": customer_id,
                "at": row.received_at,
            },
        ).scalar_one()
        connection.execute(
            sa.text(
                "UPDATE posts SET author_id = :author, identity_id = :identity,"
                " customer_id = :customer, conversation_id = :conversation WHERE id = :id"
            ),
            {
                "author": row.author,
                "identity": identity_id,
                "customer": customer_id,
                "conversation": conversation_id,
                "id": row.id,
            },
        )


def downgrade() -> None:
    op.drop_index("ix_publications_external", table_name="publications")
    with op.batch_alter_table("posts") as batch:
        batch.drop_index("ix_posts_customer")
        batch.drop_index("ix_posts_conversation")
        batch.drop_constraint("fk_posts_conversation", type_="foreignkey")
        batch.drop_constraint("fk_posts_customer", type_="foreignkey")
        batch.drop_constraint("fk_posts_identity", type_="foreignkey")
        for column in (
            "conversation_id", "customer_id", "identity_id", "author_id", "root_id",
            "in_reply_to", "origin",
        ):  # fmt: skip
            batch.drop_column(column)
    op.drop_table("conversations")
    op.drop_table("customer_notes")
    op.drop_table("customer_identities")
    op.drop_table("customers")
