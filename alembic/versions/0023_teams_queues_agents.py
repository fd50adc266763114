"""Routing (issue 23): teams, their queues (rules on a post, an order, an overflow to a
wider queue after a wait, a strategy), each agent's working state (team, skills, presence,
capacity, how long they have waited for a post), and the queue each post waits in.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _list(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.JSON(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("name", name="uq_teams_name"),
    )
    op.create_table(
        "queues",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("team_id", ID, sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        *(_list(name) for name in ("channels", "languages", "topics", "priorities", "origins")),
        sa.Column("overflow_to", ID, sa.ForeignKey("queues.id"), nullable=True),
        sa.Column("overflow_after_minutes", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("name", name="uq_queues_name"),
    )
    op.create_table(
        "agent_profiles",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("team_id", ID, sa.ForeignKey("teams.id"), nullable=True),
        *(_list(name) for name in ("languages", "topics", "channels")),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("presence", sa.String(16), nullable=False),
        sa.Column("presence_since", TS, nullable=False),
        sa.Column("idle_since", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_agent_profiles_team", "agent_profiles", ["team_id", "presence"])
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("queue_id", ID, nullable=True))
        batch.create_foreign_key("fk_posts_queue", "queues", ["queue_id"], ["id"])
        batch.create_index("ix_posts_routing_queue", ["queue_id", "received_at", "id"])


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_index("ix_posts_routing_queue")
        batch.drop_constraint("fk_posts_queue", type_="foreignkey")
        batch.drop_column("queue_id")
    op.drop_index("ix_agent_profiles_team", table_name="agent_profiles")
    op.drop_table("agent_profiles")
    op.drop_table("queues")
    op.drop_table("teams")
