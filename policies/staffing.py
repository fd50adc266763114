"""Staffing arithmetic (issue 23): how many posts an hour will bring, and how many agents
it takes to answer them in time. Pure functions; `records.staffing` feeds them the history.

Arrivals: the forecast of an hour of the coming week is the mean of the same hour of the
week (weekday and hour, UTC) over the last `weeks` weeks the history covers: social posts
follow the week's rhythm (Monday mornings, Sunday evenings) more than any trend over a
month. Until a week of history exists, the same hour of the day stands in for it.

Agents: Erlang C, the queueing model contact centers staff phone lines by (arrivals at
random, each handled for an exponential time with a known mean, `positions` servers). Its
implementation follows pyworkforce's `ErlangC` (https://github.com/rodrigo-arenas/pyworkforce,
`pyworkforce/queuing/erlang.py`), and is tested against that project's own expected figures;
we do not depend on the package itself, which pulls in OR-Tools and pandas for a formula
of a few lines.

Concurrent work: an agent works several posts at once (their capacity), so a queue served
by n agents is a queue with n x concurrency positions, each busy for the measured handle
time (assigned to reply submitted: elapsed time, which already includes the sharing).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)


@dataclass(frozen=True)
class Staff:
    """What `ErlangC.required` found."""

    raw_positions: int  # positions needed at work (no shrinkage)
    positions: int  # positions to schedule, shrinkage included
    service_level: float  # the share answered within the target at raw_positions
    occupancy: float
    waiting_probability: float


@dataclass(frozen=True)
class ErlangC:
    """`transactions` arriving in `interval` minutes, each handled in `aht` minutes on
    average, to be answered within `asa` minutes; `shrinkage`: the share of paid time an
    agent is not at work (breaks, training, meetings)."""

    transactions: float
    aht: float
    asa: float
    interval: float
    shrinkage: float = 0.0

    def __post_init__(self) -> None:
        if self.transactions <= 0:
            raise ValueError("transactions can't be smaller or equals than 0")
        if self.aht <= 0:
            raise ValueError("aht can't be smaller or equals than 0")
        if self.asa <= 0:
            raise ValueError("asa can't be smaller or equals than 0")
        if self.interval <= 0:
            raise ValueError("interval can't be smaller or equals than 0")
        if not 0 <= self.shrinkage < 1:
            raise ValueError("shrinkage must be between in the interval [0,1)")

    @property
    def intensity(self) -> float:
        """The traffic in Erlangs: positions kept busy on average."""
        return self.transactions / self.interval * self.aht

    def _productive(self, positions: int, scale_positions: bool) -> int:
        return math.floor((1 - self.shrinkage) * positions) if scale_positions else positions

    def waiting_probability(self, positions: int, scale_positions: bool = False) -> float:
        """The probability that a post waits at all (Erlang C)."""
        n = self._productive(positions, scale_positions)
        return self._waiting(n, _erlang_b(self.intensity, n))

    def _waiting(self, n: int, erlang_b: float) -> float:
        return n * erlang_b / (n - self.intensity * (1 - erlang_b))

    def service_level(self, positions: int, scale_positions: bool = False) -> float:
        """The share of posts answered within `asa`."""
        n = self._productive(positions, scale_positions)
        return self._level(n, _erlang_b(self.intensity, n))

    def _level(self, n: int, erlang_b: float) -> float:
        waiting = self._waiting(n, erlang_b)
        return max(0.0, 1 - waiting * math.exp(-(n - self.intensity) * (self.asa / self.aht)))

    def achieved_occupancy(self, positions: int, scale_positions: bool = False) -> float:
        return self.intensity / self._productive(positions, scale_positions)

    def required(self, service_level: float, max_occupancy: float = 1.0) -> Staff:
        """The fewest positions that answer `service_level` of posts within `asa`, and keep
        each position busy at most `max_occupancy` of the time. One pass of Erlang B's
        recursion up to the answer (pyworkforce recomputes it from 1 for each candidate,
        which costs minutes at a few thousand Erlangs)."""
        if not 0 <= service_level <= 1:
            raise ValueError("service_level must be between 0 and 1")
        if not 0 <= max_occupancy <= 1:
            raise ValueError("max_occupancy must be between 0 and 1")
        positions = round(self.intensity + 1)
        erlang_b = _erlang_b(self.intensity, positions)
        achieved = self._level(positions, erlang_b)
        while achieved < service_level:
            positions += 1
            erlang_b = _next_b(self.intensity, positions, erlang_b)
            achieved = self._level(positions, erlang_b)
        occupancy = self.achieved_occupancy(positions)
        raw = positions
        if occupancy > max_occupancy:
            raw = math.ceil(self.intensity / max_occupancy)
            occupancy = self.achieved_occupancy(raw)
            achieved = self.service_level(raw)
        return Staff(
            raw_positions=raw,
            positions=math.ceil(raw / (1 - self.shrinkage)),
            service_level=achieved,
            occupancy=occupancy,
            waiting_probability=self.waiting_probability(raw),
        )


def _erlang_b(intensity: float, positions: int) -> float:
    """Erlang B (the share of arrivals finding every position busy, were there no queue),
    by its recursion on B (pyworkforce's on 1/B is the same arithmetic)."""
    erlang_b = 1.0
    for k in range(1, positions + 1):
        erlang_b = _next_b(intensity, k, erlang_b)
    return erlang_b


def _next_b(intensity: float, k: int, previous: float) -> float:
    return intensity * previous / (k + intensity * previous)


# The targets a staffing plan may ask for. Outside them the answer means nothing (a 5%
# service level) or costs without bound: an occupancy of 1e-300 asks for 1e300 positions,
# each a step of the recursion (a request that never ends: the schema fuzzer found it).
SERVICE_LEVELS = (0.5, 0.99)
OCCUPANCIES = (0.5, 1.0)
SHRINKAGES = (0.0, 0.6)


@dataclass(frozen=True)
class Target:
    """The service a queue is staffed for."""

    service_level: float = 0.8  # the share of posts that reach an agent within `wait_minutes`
    wait_minutes: float = 60.0
    max_occupancy: float = 0.85
    shrinkage: float = 0.3
    concurrency: int = 1  # posts an agent works at once

    def __post_init__(self) -> None:
        for name, (low, high) in (
            ("service_level", SERVICE_LEVELS),
            ("max_occupancy", OCCUPANCIES),
            ("shrinkage", SHRINKAGES),
        ):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be between {low} and {high}")


@functools.lru_cache(maxsize=4096)
def agents_needed(arrivals: float, handle_minutes: float, target: Target) -> int:
    """Agents to schedule for an hour that brings `arrivals` posts (0 when none come).
    Kept once worked out: a week's forecast repeats the same few means hour after hour,
    queue after queue, and each is a run of the Erlang C recursion."""
    if arrivals <= 0:
        return 0
    model = ErlangC(
        transactions=arrivals,
        aht=handle_minutes,
        asa=target.wait_minutes,
        interval=60,
        shrinkage=target.shrinkage,
    )
    staff = model.required(target.service_level, target.max_occupancy)
    return math.ceil(staff.positions / max(target.concurrency, 1))


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def forecast(
    history: Mapping[datetime, int], start: datetime, *, hours: int = 168, weeks: int = 4,
    since: datetime,
) -> list[tuple[datetime, float]]:  # fmt: skip
    """Expected arrivals for each of `hours` hours from `start` (an hour's start): the mean
    of the same hour 1..`weeks` weeks before, over the weeks the history covers (from
    `since`, the first hour it holds; a week before it is not counted as zero posts). With
    less than a week of history, the mean of the same hour of the day over the days it
    covers: a new team gets a forecast from its first day, by the day's rhythm alone.
    `history`: posts per hour's start; an hour missing had none."""
    start = hour_of(start)
    step, back = (WEEK, weeks) if start - since >= WEEK else (DAY, 7)
    result = []
    for n in range(hours):
        hour = start + n * HOUR
        earlier = [hour - k * step for k in range(1, back + 1)]
        seen = [h for h in earlier if since <= h < start]
        mean = sum(history.get(h, 0) for h in seen) / len(seen) if seen else 0.0
        result.append((hour, round(mean, 2)))
    return result
