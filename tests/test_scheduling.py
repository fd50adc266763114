"""The suite's layout for its workers (tests/scheduling.py): every test once, each worker's
first hand the size worksteal gives it, opening with about a third of the long tests'
seconds, in pytest's order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from tests import scheduling


@dataclass
class _Mark:
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Item:
    name: str
    long: _Mark | None = None

    def get_closest_marker(self, name: str) -> _Mark | None:
        return self.long if name == "long" else None


def _items(count: int, long_seconds: list[float | None]) -> list[pytest.Item]:
    long_ones = [
        _Item(f"long{i}", _Mark(() if seconds is None else (seconds,)))
        for i, seconds in enumerate(long_seconds)
    ]
    short = [_Item(f"short{i}") for i in range(count - len(long_ones))]
    return cast(list[pytest.Item], short[:7] + long_ones + short[7:])


def test_the_hands_are_worksteals_split() -> None:
    assert scheduling.hand_sizes(1980, 3) == [660, 660, 660]
    assert scheduling.hand_sizes(1981, 3) == [660, 660, 661]
    assert scheduling.hand_sizes(5, 1) == [5]


def test_each_worker_opens_with_its_share_of_the_long_tests_and_every_test_runs_once() -> None:
    items = _items(100, [95, None, None, None, 35, 35, None, None, None, 12])
    laid = scheduling.laid_out(items, 3)
    assert sorted(id(item) for item in laid) == sorted(id(item) for item in items)
    hands, start = [], 0
    for size in scheduling.hand_sizes(len(items), 3):
        hands.append(laid[start : start + size])
        start += size
    seconds = []
    for hand in hands:
        weights = [scheduling.weight(item) for item in hand]
        count = sum(w is not None for w in weights)
        assert all(w is not None for w in weights[:count])  # the long ones open the hand
        assert [items.index(i) for i in hand[:count]] == sorted(
            items.index(i) for i in hand[:count]
        )
        seconds.append(sum(w or 0.0 for w in weights))
    assert sorted(seconds) == [95.0, 95.0, 107.0]  # 95 | 35+20+20+20 | 35+20+20+20, then 12
    short_order = [i.name for i in laid if scheduling.weight(i) is None]
    assert short_order == [i.name for i in items if scheduling.weight(i) is None]  # kept


def test_without_workers_the_long_tests_come_first() -> None:
    items = _items(10, [None, 40])
    laid = scheduling.laid_out(items, 1)
    assert [scheduling.weight(i) for i in laid[:2]] == [20.0, 40.0]
    assert len(laid) == 10


def test_a_long_test_may_give_its_seconds_by_name() -> None:
    named = cast(pytest.Item, _Item("named", _Mark(kwargs={"seconds": 90})))
    assert scheduling.weight(named) == 90.0
