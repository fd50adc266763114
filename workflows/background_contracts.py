"""What the background workflows and their activities agree on: the channel accounts'
pollers, the router, the audit log's signed checkpoints and the retention purge. Their
names and dataclasses, apart from a draft's (`workflows.contracts`), under the same rules:
workflow code imports only these modules and temporalio (determinism), and each activity
takes one dataclass argument, so fields can be added later without breaking running
workflows.

No `from __future__ import annotations` here: the payload converter resolves these types
on every message, and real annotations resolve several times faster than strings.
"""

from dataclasses import dataclass


def checkpoints_workflow_id(prefix: str = "") -> str:
    """`audit-checkpoints`: the one workflow that signs the audit log on a schedule."""
    return f"{prefix}audit-checkpoints"


def router_workflow_id(prefix: str = "") -> str:
    """`queue-router`: the one workflow that runs the queues' router rounds."""
    return f"{prefix}queue-router"


def purge_workflow_id(prefix: str = "") -> str:
    """`retention-purge`: the one workflow that erases expired content on a schedule."""
    return f"{prefix}retention-purge"


def poller_id(account_id: int, prefix: str = "") -> str:
    """`poll-<id>`: one poller (the `MastodonPoller` workflow, whatever the platform) per
    channel account."""
    return f"{prefix}poll-{account_id}"


NUDGE = "nudge"  # the router's signal: posts arrived or an agent became available


# --- the channel accounts' pollers (Mastodon, X, Bluesky) ------------------------------------


@dataclass(frozen=True, kw_only=True)
class PollStart:
    account_id: int
    since_id: str | None = None  # the reader's position (None: from now on)
    interval_seconds: float = 60.0


@dataclass(frozen=True, kw_only=True)
class PollJob:
    account_id: int
    since_id: str | None  # the reader's position: opaque, its own (connectors.pollers)


@dataclass(frozen=True, kw_only=True)
class Polled:
    since_id: str | None  # the reader's position once this round's posts are stored
    stored: int  # new posts
    wait_seconds: float = 0.0  # the platform asked us to wait this long before the next round


# --- routing ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RouterStart:
    every_seconds: float  # the longest a waiting post waits for a round (a nudge is sooner)


@dataclass(frozen=True, kw_only=True)
class RouterJob:
    pass


@dataclass(frozen=True, kw_only=True)
class RoutedRound:
    assigned: int  # posts given to agents this round
    overflowed: int  # posts moved to a wider queue


# --- the audit log's signed checkpoints ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CheckpointStart:
    every_seconds: float  # how often the tree is signed while events arrive


@dataclass(frozen=True, kw_only=True)
class CheckpointJob:
    pass


@dataclass(frozen=True, kw_only=True)
class Signed:
    tree_size: int | None  # the size signed now; None: nothing new since the last one


@dataclass(frozen=True, kw_only=True)
class PurgeStart:
    every_seconds: float  # how often expired content is erased
    days: dict[str, int]  # each record class's retention period (records.retention)


@dataclass(frozen=True, kw_only=True)
class PurgeJob:
    days: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class Purged:
    posts: int
    versions: int
    events: int
