"""Who answers what (issue 23): the pure decision of a queue's router. Given the posts
waiting in a queue and the agents who may take them, which agent gets which post.

Posts go most urgent first, then oldest first. A post goes only to an agent who is
available, below their capacity (open posts at once), and has its skills: its language,
topic and channel, where the agent lists any of that kind (an agent who lists no languages
takes every language; a post triage found no language for goes to anyone). Of those, the
one who has waited longest since their last post (`longest_idle`), or the least loaded
(`least_loaded`: open posts against capacity, then the longest wait). Each post to at most
one agent; `records.routing` writes the decisions so that a post already taken (a person
took it meanwhile) stays with whoever took it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from lifecycle.words import Presence

# Each priority (records.fields.Priority) by urgency, the most urgent first: the one
# ranking of priorities (triage's rules and a source's claim compare by it too).
URGENCY = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def urgency(priority: str) -> int:
    """A priority's rank, lower first (one not known after every known one)."""
    return URGENCY.get(priority, len(URGENCY))


class Strategy(StrEnum):
    longest_idle = "longest_idle"
    least_loaded = "least_loaded"


@dataclass(frozen=True)
class Agent:
    username: str
    presence: Presence
    capacity: int  # open posts at once
    load: int  # open posts now
    idle_since: datetime  # their last post assigned (or when they came online)
    languages: frozenset[str] = field(default_factory=frozenset)
    topics: frozenset[str] = field(default_factory=frozenset)
    channels: frozenset[str] = field(default_factory=frozenset)

    def can_take(self, post: Waiting) -> bool:
        return (
            self.presence is Presence.available
            and self.load < self.capacity
            and _skilled(self.languages, post.language)
            and _skilled(self.topics, post.topic)
            and _skilled(self.channels, post.channel)
        )


@dataclass(frozen=True)
class Waiting:
    post_id: int
    channel: str
    priority: str
    received_at: datetime
    language: str | None = None
    topic: str | None = None


def _skilled(skills: frozenset[str], needed: str | None) -> bool:
    return not skills or needed is None or needed in skills


def assign(
    posts: Iterable[Waiting],
    agents: Sequence[Agent],
    *,
    now: datetime,
    strategy: Strategy = Strategy.longest_idle,
) -> list[tuple[int, str]]:
    """(post id, username) for each post assigned, in the order decided.

    Only agents with room are looked at, and a kind of post (language, topic, channel) no
    one could take is not looked at again this round (agents only fill up as it goes): a
    round costs the assignments it makes times the agents with room, not posts times agents."""
    room = {
        a.username: a for a in agents if a.presence is Presence.available and a.load < a.capacity
    }
    hopeless: set[tuple[str | None, str | None, str]] = set()
    decided = []
    for post in sorted(posts, key=lambda p: (urgency(p.priority), p.received_at, p.post_id)):
        if not room:
            break
        kind = (post.language, post.topic, post.channel)
        if kind in hopeless:
            continue
        able = [agent for agent in room.values() if agent.can_take(post)]
        if not able:
            hopeless.add(kind)
            continue
        chosen = min(able, key=_order(strategy))
        decided.append((post.post_id, chosen.username))
        taken = replace(chosen, load=chosen.load + 1, idle_since=now)
        if taken.load < taken.capacity:
            room[chosen.username] = taken
        else:
            del room[chosen.username]
    return decided


def _order(strategy: Strategy) -> Callable[[Agent], tuple[Any, ...]]:
    if strategy is Strategy.least_loaded:
        return lambda a: (a.load / a.capacity, a.idle_since, a.username)
    return lambda a: (a.idle_since, a.load / a.capacity, a.username)
