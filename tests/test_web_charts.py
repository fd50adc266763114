"""The server-drawn bar charts' geometry."""

from __future__ import annotations

from web.charts import HEIGHT, bars


def test_bars_share_one_scale_from_zero_with_whole_ticks_for_counts() -> None:
    chart = bars("Posts", [("Mon", [1.0, 0.0]), ("Tue", [3.0, 2.0])], ["in", "out"], counts=True)
    assert [text for _, text in chart.ticks] == ["0", "1", "2", "3", "4"]
    heights = {bar.title: bar.height for bar in chart.bars}
    assert heights["Tue, in: 3"] == 3 * heights["Mon, in: 1"]
    assert heights["Mon, out: 0"] == 0
    assert all(bar.y + bar.height <= HEIGHT for bar in chart.bars)
    assert [label for _, label in chart.labels] == ["Mon", "Tue"]
    assert len({bar.x for bar in chart.bars}) == 4  # side by side, none on another


def test_a_chart_of_nothing_is_empty_and_missing_values_draw_no_bar() -> None:
    assert bars("Decisions", [("approve", [0.0]), ("reject", [0.0])], ["n"]).empty
    assert bars("Nothing", [], ["n"]).empty
    timed = bars("Stage", [("comms", [90.0, None])], ["p50", "p90"], " min")
    assert [bar.title for bar in timed.bars] == ["comms, p50: 90 min"]
    assert timed.ticks[-1][1] == "100 min"


def test_a_week_of_hours_is_labelled_once_a_day_at_midnight_and_every_bar_keeps_its_title() -> None:
    hours = [(f"{day} {hour:02d}:00", [1.0]) for day in ("Mon", "Tue") for hour in range(24)]
    chart = bars("Agents", hours[19:], ["agents"], counts=True, label_every=24, label_from=5)
    assert [label for _, label in chart.labels] == ["Tue 00:00"]
    assert len(chart.bars) == len(hours[19:]) and chart.bars[0].title == "Mon 19:00, agents: 1"
