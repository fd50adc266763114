"""The router's decision (issue 23, item 8), as properties over any posts and agents
(hypothesis): a post goes only to an agent with its skills, available and below capacity,
never to two; nothing is left waiting that an agent with room could take; and no post is
passed over for a less urgent or younger one the same agent took."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.routing import URGENCY, Agent, Strategy, Waiting, assign
from lifecycle.words import Presence

T0 = datetime(2026, 11, 30, tzinfo=UTC)
LANGUAGES, TOPICS, CHANNELS = ["en", "es", "de"], ["fraud", "billing", "praise"], ["x", "bluesky"]


def skills(options: list[str]) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(options), max_size=len(options))


agents = st.lists(
    st.builds(
        Agent,
        username=st.text("abcdefgh", min_size=1, max_size=4),
        presence=st.sampled_from(list(Presence)),
        capacity=st.integers(1, 4),
        load=st.integers(0, 5),
        idle_since=st.integers(0, 600).map(lambda s: T0 + timedelta(seconds=s)),
        languages=skills(LANGUAGES),
        topics=skills(TOPICS),
        channels=skills(CHANNELS),
    ),
    max_size=8,
    unique_by=lambda a: a.username,
)
posts = st.lists(
    st.builds(
        Waiting,
        post_id=st.integers(1, 10_000),
        channel=st.sampled_from(CHANNELS),
        priority=st.sampled_from(list(URGENCY)),
        received_at=st.integers(0, 600).map(lambda s: T0 + timedelta(seconds=s)),
        language=st.none() | st.sampled_from(LANGUAGES),
        topic=st.none() | st.sampled_from(TOPICS),
    ),
    max_size=30,
    unique_by=lambda p: p.post_id,
)


def could(agent: Agent, post: Waiting, load: int) -> bool:
    """`agent` (with `load` open posts) may take `post`: the rule, written out again."""
    return (
        agent.presence is Presence.available
        and load < agent.capacity
        and (not agent.languages or post.language is None or post.language in agent.languages)
        and (not agent.topics or post.topic is None or post.topic in agent.topics)
        and (not agent.channels or post.channel in agent.channels)
    )


@settings(max_examples=300, deadline=None)
@given(posts=posts, agents=agents, strategy=st.sampled_from(list(Strategy)))
def test_every_decision_keeps_the_rules(
    posts: list[Waiting], agents: list[Agent], strategy: Strategy
) -> None:
    decided = assign(posts, agents, now=T0 + timedelta(hours=1), strategy=strategy)
    by_post = {p.post_id: p for p in posts}
    by_agent = {a.username: a for a in agents}
    # Never two agents for a post.
    assert len({post for post, _ in decided}) == len(decided)
    load = {a.username: a.load for a in agents}
    for post_id, username in decided:
        agent = by_agent[username]
        # Only to an agent available, below capacity, with the post's skills.
        assert could(agent, by_post[post_id], load[username]), (agent, by_post[post_id])
        load[username] += 1
    assert all(load[a.username] <= max(a.capacity, a.load) for a in agents)
    taken = {post for post, _ in decided}
    left = [p for p in posts if p.post_id not in taken]
    # Nothing is left that an agent with room could take.
    for post in left:
        assert not any(could(a, post, load[a.username]) for a in agents), post
    # No post passed over for a later one (less urgent, or as urgent and younger) that the
    # same agent took while it could have taken this one instead.
    order = {p.post_id: (URGENCY[p.priority], p.received_at, p.post_id) for p in posts}
    load_then = {a.username: a.load for a in agents}
    for post_id, username in decided:
        agent = by_agent[username]
        for post in left:
            if could(agent, post, load_then[username]):
                assert order[post_id] < order[post.post_id]
        load_then[username] += 1


@settings(max_examples=100, deadline=None)
@given(agents=agents)
def test_the_agent_who_waited_longest_gets_the_next_post(agents: list[Agent]) -> None:
    post = Waiting(post_id=1, channel="x", priority="normal", received_at=T0)
    able = [a for a in agents if could(a, post, a.load)]
    decided = assign([post], agents, now=T0, strategy=Strategy.longest_idle)
    if not able:
        assert decided == []
        return
    [(_, username)] = decided
    assert (
        min(a.idle_since for a in able)
        == next(a for a in able if a.username == username).idle_since
    )
