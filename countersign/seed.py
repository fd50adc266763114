"""Demo users and a handful of realistic inbound posts, so a newcomer's inbox is not empty."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from lifecycle.words import Role
from records import posts, users
from records.db import Database
from records.fields import Channel, Priority
from records.post_models import Post, PostCreate
from records.types import utcnow

DEMO_PASSWORD = "countersign-demo"  # noqa: S105 - development only, printed at start-up
DEMO_USERS: tuple[tuple[str, Role], ...] = (
    ("agent", Role.agent),
    ("agent2", Role.agent),
    ("comms", Role.comms),
    ("legal", Role.legal),
    ("publisher", Role.publisher),
    ("supervisor", Role.supervisor),
    ("auditor", Role.auditor),
    ("admin", Role.admin),
)
SEED_ACTOR = "seed"

DEMO_POSTS: tuple[tuple[Channel, str, str, Priority], ...] = (
    (
        Channel.x,
        "@dana_k",
        "@AcmeBank my card was charged twice for the same grocery order. "
        "Third time this month. Who do I talk to?",
        Priority.high,
    ),
    (
        Channel.mastodon,
        "@li@mastodon.example",
        "Is the Acme app down? I can't log in since this morning and my rent is due today.",
        Priority.urgent,
    ),
    (
        Channel.facebook,
        "Marta Rossi",
        "I was promised a refund two weeks ago and still nothing. "
        "My lawyer says I should just file a complaint.",
        Priority.high,
    ),
    (
        Channel.instagram,
        "@sunny.days",
        "Love the new branch in Leeds! Do you offer student accounts there?",
        Priority.low,
    ),
    (
        Channel.x,
        "@tom_builds",
        "@AcmeBank how long does an international transfer to Canada usually take?",
        Priority.normal,
    ),
    (
        Channel.bluesky,
        "@priya.bsky.social",
        "Got a text saying my Acme account is locked, with a link. Is this real or a scam?",
        Priority.urgent,
    ),
)


def seed_users(database: Database) -> list[str]:
    """Create any demo user that is missing; returns the ones created."""
    created = []
    with database.write_session() as session:
        for username, role in DEMO_USERS:
            if users.get_by_username(session, username) is None:
                users.create(
                    session,
                    username=username,
                    roles=[role],
                    password=DEMO_PASSWORD,
                    display_name=f"Demo {role.value}",
                    actor=SEED_ACTOR,
                    actor_role=Role.admin.value,
                )
                created.append(username)
    return created


def seed_posts(database: Database) -> int:
    """On first start only (no posts at all): a few inbound posts from the last hour."""
    with database.write_session() as session:
        if session.exec(select(Post.id).limit(1)).first() is not None:
            return 0
        now = utcnow()
        for n, (channel, author, text, priority) in enumerate(DEMO_POSTS):
            external_id = f"demo-{n + 1}"
            body = PostCreate(
                channel=channel,
                external_id=external_id,
                author=author,
                text=text,
                url=f"https://{channel.value}.example/{external_id}",
                priority=priority,
                received_at=now - timedelta(minutes=55 - 9 * n),
            )
            posts.ingest(session, body, actor=SEED_ACTOR, actor_role=Role.admin.value)
    return len(DEMO_POSTS)
