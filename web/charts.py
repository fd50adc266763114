"""Bar charts drawn on the server as SVG: the geometry is worked out here, the markup is in
`templates/pages/_bars.svg.html`. No chart library, no script."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 220
LEFT, BOTTOM, TOP = 48, 36, 12  # room for the value axis, the labels, the top value
TICKS = 4  # value ticks above 0


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str  # read by screen readers and shown on hover


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    labels: list[tuple[float, str]]  # x of each group's label
    ticks: list[tuple[float, str]]  # y of each value tick
    series: list[str]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.bars


def bars(
    title: str,
    groups: list[tuple[str, list[float | None]]],
    series: list[str],
    unit: str = "",
    *,
    counts: bool = False,
    label_every: int = 1,
    label_from: int = 0,
) -> Chart:
    """Grouped bars: one group per label, one bar per series, on a shared scale from 0.
    `counts`: the values are whole numbers, and so are the scale's ticks. `label_every`:
    only every n-th group's label, from the `label_from`-th, is written under the axis (a
    week of hours has room for a label a day, at midnight); every bar keeps its own title.
    A chart whose values are all zero (or missing) is empty."""
    values = [v for _, vs in groups for v in vs if v is not None]
    most = max(values, default=0)
    # Counts: the least multiple of the tick count, so that every tick is a whole number.
    top = math.ceil(most / TICKS) * TICKS if counts else _nice(most)
    if not top:
        return Chart(title, [], [], [], series)
    plot_width, plot_height = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_width / max(len(groups), 1)
    bar_width = max(min(slot * 0.8 / max(len(series), 1), 40), 2)
    drawn, labels = [], []
    for g, (label, group_values) in enumerate(groups):
        start = LEFT + g * slot + (slot - bar_width * len(series)) / 2
        if g >= label_from and (g - label_from) % label_every == 0:
            labels.append((LEFT + (g + 0.5) * slot, label))
        for s, value in enumerate(group_values):
            if value is None:
                continue
            height = plot_height * value / top if top else 0
            drawn.append(
                Bar(
                    x=round(start + s * bar_width, 1),
                    y=round(HEIGHT - BOTTOM - height, 1),
                    width=round(bar_width - 1, 1),
                    height=round(height, 1),
                    series=s,
                    title=f"{label}, {series[s]}: {_number(value)}{unit}",
                )
            )
    ticks = [
        (round(HEIGHT - BOTTOM - plot_height * i / TICKS, 1), f"{_number(top * i / TICKS)}{unit}")
        for i in range(TICKS + 1)
    ]
    return Chart(title, drawn, labels, ticks, series)


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 0
    power = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) or value >= 10 else f"{value:.1f}"
