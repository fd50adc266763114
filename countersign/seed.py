"""Demo users and a handful of realistic inbound posts, so a newcomer's inbox is not empty."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from lifecycle.words import Role
from policies.versions import RuleBook
from records import posts, routing_setup, users
from records.db import Database
from records.fields import Channel, Origin
from records.post_models import AuthorProfile, Post, PostCreate
from records.routing_models import AgentSkills, QueueCreate
from records.tables import TEAMS
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

# Demo posts as the channels bring them (author, followers), in several languages: triage
# gives each its priority, topic and language, with the reasons (`policies.triage`).
DEMO_POSTS: tuple[tuple[Channel, str, str, int], ...] = (
    (
        Channel.x,
        "@dana_k",
        "@AcmeBank my card was charged twice for the same grocery order. "
        "Third time this month. Who do I talk to?",
        1_450,
    ),
    (
        Channel.mastodon,
        "@li@mastodon.example",
        "Is the Acme app down? I can't log in since this morning and my rent is due today.",
        210,
    ),
    (
        Channel.facebook,
        "Marta Rossi",
        "I was promised a refund two weeks ago and still nothing. "
        "My lawyer says I should just file a complaint.",
        95,
    ),
    (
        Channel.instagram,
        "@sunny.days",
        "Love the new branch in Leeds! Do you offer student accounts there?",
        640,
    ),
    (
        Channel.x,
        "@tom_builds",
        "@AcmeBank how long does an international transfer to Canada usually take?",
        80,
    ),
    (
        Channel.bluesky,
        "@priya.bsky.social",
        "Got a text saying my Acme account is locked, with a link. Is this real or a scam?",
        330,
    ),
    (
        Channel.x,
        "@lucia_mx",
        "@AcmeBank me cobraron dos veces la comisión de la tarjeta. "
        "Quiero el reembolso, es ridículo.",
        120,
    ),
    (
        Channel.mastodon,
        "@jonas@social.example",
        "@AcmeBank Die App stürzt seit dem Update bei jedem Start ab. Bitte fixen!",
        45,
    ),
    (
        Channel.x,
        "@FinanceWatchUK",
        "Acme Bank customers tell me the app has been down all day "
        "and nobody answers the phone. Appalling for a bank.",
        48_000,
    ),
    (Channel.x, "@free_followers_4u", "https://bit.ly/free-followers #AcmeBank @AcmeBank", 3),
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


# A team, its queues (urgent first, Spanish, the rest; Spanish overflows to the rest after
# an hour) and its two agents' skills: both start offline, so no post is given to anyone
# until an agent says they are available (the inbox's "Become available").
DEMO_TEAM = "Care"
DEMO_QUEUES: tuple[dict[str, Any], ...] = (
    {"name": "Urgent and public risk", "position": 1, "priorities": ["urgent"],
     "response_minutes": {"urgent": 15}},
    {"name": "Español", "position": 2, "languages": ["es"]},
    {"name": "Everything else", "position": 9},
)  # fmt: skip
DEMO_LANGUAGES = {"agent": ["en"], "agent2": ["en", "es"]}


def seed_routing(database: Database) -> bool:
    """On first start only (no team at all): the demo team, queues and agents' skills."""
    with database.write() as connection:
        if connection.execute(select(TEAMS.c.id).limit(1)).first() is not None:
            return False
        by = {"actor": SEED_ACTOR, "role": Role.admin.value}
        team = routing_setup.create_team(connection, DEMO_TEAM, **by)
        ids = {
            q["name"]: routing_setup.create_queue(connection, QueueCreate(team_id=team, **q), **by)
            for q in DEMO_QUEUES
        }
        spanish = QueueCreate(
            team_id=team, **DEMO_QUEUES[1], overflow_to=ids["Everything else"],
            overflow_after_minutes=60,
        )  # fmt: skip
        routing_setup.change_queue(connection, ids["Español"], spanish, **by)
        for username, languages in DEMO_LANGUAGES.items():
            body = AgentSkills(team_id=team, capacity=3, languages=languages)
            routing_setup.set_skills(connection, username, body, **by)
    return True


def seed_posts(database: Database, book: RuleBook | None = None) -> int:
    """On first start only (no posts at all): a few inbound posts from the last hour,
    triaged by the rule set in force (`book`: the rule sets; the shipped one by default)."""
    book = book or RuleBook()
    with database.write_session() as session:
        if session.exec(select(Post.id).limit(1)).first() is not None:
            return 0
        now = utcnow()
        for n, (channel, author, text, followers) in enumerate(DEMO_POSTS):
            external_id = f"demo-{n + 1}"
            body = PostCreate(
                channel=channel,
                external_id=external_id,
                author=author,
                text=text,
                url=f"https://{channel.value}.example/{external_id}",
                received_at=now - timedelta(minutes=55 - 5 * n),
                author_profile=AuthorProfile(followers=followers),
                origin=Origin.mention if "@AcmeBank" in text else Origin.listening,
            )
            posts.ingest(session, body, rules=book, actor=SEED_ACTOR, actor_role=Role.admin.value)
    return len(DEMO_POSTS)
