"""The order `make test`'s workers take the tests in, so that they all finish at about the
same time.

pytest-xdist's `worksteal` mode (the Makefile's `--dist`) hands each of its W workers one
contiguous W-th of the collected items, then lets a worker that runs out take half of what
another has left, from the end. So the items are laid out as W hands of those sizes, each
opening with its share of the long tests (`pytest.mark.long`, optionally with the seconds it
runs), dealt heaviest first to the hand with the fewest of their seconds so far; the short
tests fill the hands behind them. A long test is then started early on every worker and
never at the end, where the others would sit idle beside it (with one contiguous block of
long tests, one worker ran them all while the others finished three minutes earlier).
Within a hand, its long tests and then its short ones keep the order pytest gave, which
groups them by database: each switch between SQLite and PostgreSQL builds the session's
database again.

`--lf`, `--ff` and `--nf` reorder the items after this (pytest's cache runs last): every
test still runs once, but the long ones may bunch up again.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

LONG_SECONDS = 20.0  # what a `long` test without a figure of its own is counted as


def weight(item: pytest.Item) -> float | None:
    """The seconds a long test is counted as, or None for a short one."""
    marker = item.get_closest_marker("long")
    if marker is None:
        return None
    return float(marker.kwargs.get("seconds", marker.args[0] if marker.args else LONG_SECONDS))


def hand_sizes(count: int, workers: int) -> list[int]:
    """How many items each worker is first handed: worksteal's own split (each takes the
    items left over the workers left, rounded down)."""
    sizes, left = [], count
    for taken in range(workers):
        sizes.append(left // (workers - taken))
        left -= sizes[-1]
    return sizes


def laid_out(items: Sequence[pytest.Item], workers: int) -> list[pytest.Item]:
    """`items` as `workers` hands, one after another (see the module's docstring)."""
    workers = max(1, workers)
    sizes = hand_sizes(len(items), workers)
    weights = [weight(item) for item in items]
    long_ones = sorted(
        ((n, seconds) for n, seconds in enumerate(weights) if seconds is not None),
        key=lambda long_one: -long_one[1],
    )
    hands: list[list[int]] = [[] for _ in range(workers)]  # places in `items`
    seconds = [0.0] * workers
    for n, taking in long_ones:  # the heaviest first, each to the hand with the fewest seconds
        open_hands = [h for h in range(workers) if len(hands[h]) < sizes[h]]
        lightest = min(open_hands, key=lambda h: (seconds[h], h))
        hands[lightest].append(n)
        seconds[lightest] += taking
    short = iter(n for n, taking in enumerate(weights) if taking is None)
    for hand, size in zip(hands, sizes, strict=True):
        hand.sort()  # pytest's order, by database
        hand.extend(next(short) for _ in range(size - len(hand)))
    return [items[n] for hand in hands for n in hand]


def workers_of(config: pytest.Config) -> int:
    """The number of xdist workers this run has (1 without xdist)."""
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput["workercount"]) if workerinput else 1
