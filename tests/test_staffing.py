"""The staffing arithmetic (issue 23, item 5), pure: Erlang C checked against the figures
of its reference implementation's own test suite (pyworkforce, `queuing/tests/
test_erlang.py`) and a textbook example, its properties by hypothesis, and the forecast of
arrivals by the same hour of the last weeks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.staffing import ErlangC, Target, agents_needed, forecast

# pyworkforce 0.5.1, pyworkforce/queuing/tests/test_erlang.py: 100 transactions in 30
# minutes, 3 minutes each, answered within 0.33 minutes, 30% shrinkage.
REFERENCE = {"transactions": 100, "asa": 0.33, "aht": 3, "interval": 30, "shrinkage": 0.3}


def test_the_reference_figures() -> None:
    model = ErlangC(**REFERENCE)
    staff = model.required(service_level=0.8, max_occupancy=0.85)
    assert (staff.raw_positions, staff.positions) == (14, 20)
    assert round(staff.service_level, 3) == 0.888
    assert round(staff.occupancy, 3) == 0.714
    assert round(staff.waiting_probability, 3) == 0.174
    # test_scale_positions_erlangc: the scheduled positions, scaled back by the shrinkage.
    assert round(model.service_level(20, scale_positions=True), 3) == 0.888
    assert round(model.achieved_occupancy(20, scale_positions=True), 3) == 0.714
    assert round(model.waiting_probability(20, scale_positions=True), 3) == 0.174


def test_the_reference_figures_when_occupancy_binds() -> None:
    """test_over_occupancy_erlangc: at most 70% busy takes more positions than the SLA."""
    model = ErlangC(**REFERENCE)
    staff = model.required(service_level=0.8, max_occupancy=0.7)
    assert (staff.raw_positions, staff.positions) == (15, 22)
    assert round(model.service_level(22, scale_positions=True), 3) == 0.941
    assert round(model.achieved_occupancy(22, scale_positions=True), 3) == 0.667
    assert round(model.waiting_probability(22, scale_positions=True), 3) == 0.102


def test_the_textbook_example() -> None:
    """Call Centre Helper's worked Erlang C example ("Erlang C formula made simple"): 100
    calls in 30 minutes of 180 s each is 10 Erlangs of traffic; answered within 20 s, 11,
    12, 13 and 14 agents serve 39%, 64%, 80% (just under) and 89%, so 80/20 takes 14."""
    model = ErlangC(transactions=100, aht=3, asa=20 / 60, interval=30)
    assert model.intensity == 10
    levels = [round(model.service_level(n), 2) for n in (11, 12, 13, 14)]
    assert levels == [0.39, 0.64, 0.8, 0.89] and model.service_level(13) < 0.8
    staff = model.required(service_level=0.8)
    assert (staff.raw_positions, round(staff.occupancy, 2)) == (14, 0.71)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("transactions", -20, "transactions can't be smaller or equals than 0"),
     ("aht", -5, "aht can't be smaller or equals than 0"),
     ("asa", 0, "asa can't be smaller or equals than 0"),
     ("interval", -30, "interval can't be smaller or equals than 0"),
     ("shrinkage", 1, "shrinkage must be between in the interval [0,1)")],
)  # fmt: skip
def test_the_reference_refusals(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        ErlangC(**{**REFERENCE, field: value})
    assert str(refused.value) == message


@pytest.mark.parametrize(("level", "occupancy"), [(1.8, 0.85), (0.8, 1.2)])
def test_a_target_outside_zero_to_one_is_refused(level: float, occupancy: float) -> None:
    with pytest.raises(ValueError, match="must be between 0 and 1"):
        ErlangC(**REFERENCE).required(service_level=level, max_occupancy=occupancy)


@given(
    transactions=st.floats(0.5, 500),
    aht=st.floats(0.5, 60),
    asa=st.floats(0.1, 120),
    level=st.floats(0.05, 0.99),
)
def test_the_positions_found_are_the_fewest_that_meet_the_level(
    transactions: float, aht: float, asa: float, level: float
) -> None:
    model = ErlangC(transactions=transactions, aht=aht, asa=asa, interval=60)
    staff = model.required(level)
    assert staff.service_level >= level
    fewer = staff.raw_positions - 1
    if fewer > model.intensity and fewer >= round(model.intensity + 1):
        assert model.service_level(fewer) < level
    # More positions never serve worse.
    assert model.service_level(staff.raw_positions + 1) >= staff.service_level - 1e-12


def test_agents_who_work_several_posts_at_once_are_fewer() -> None:
    alone = agents_needed(40, 20, Target(wait_minutes=30, concurrency=1))
    three = agents_needed(40, 20, Target(wait_minutes=30, concurrency=3))
    assert three == -(-ErlangC(40, 20, 30, 60, 0.3).required(0.8, 0.85).positions // 3)
    assert three < alone
    assert agents_needed(0, 20, Target()) == 0  # an hour with no post needs no one


T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def test_the_forecast_is_the_mean_of_the_same_hour_over_the_weeks_seen() -> None:
    hour = timedelta(hours=1)
    start = T0 + timedelta(weeks=4)
    history = {
        T0 + 9 * hour: 10,  # Monday 09:00, four weeks ago
        T0 + timedelta(weeks=1) + 9 * hour: 20,
        T0 + timedelta(weeks=3) + 9 * hour: 30,  # week 2 had none at 09:00: zero
        T0 + timedelta(weeks=3, days=2) + 14 * hour: 7,  # a Wednesday 14:00, last week
    }
    ahead = dict(forecast(history, start, since=T0))
    assert len(ahead) == 168 and min(ahead) == start
    assert ahead[start + 9 * hour] == 15.0  # (10 + 20 + 0 + 30) / 4
    assert ahead[start + timedelta(days=2) + 14 * hour] == 1.75  # 7 / 4
    assert ahead[start + 10 * hour] == 0.0
    # A history of one week: that week alone, not diluted by weeks before it began.
    recent = dict(forecast(history, start, since=T0 + timedelta(weeks=3)))
    assert recent[start + 9 * hour] == 30.0
    assert recent[start + timedelta(days=2) + 14 * hour] == 7.0


def test_less_than_a_week_of_history_forecasts_by_the_hour_of_the_day() -> None:
    hour, day = timedelta(hours=1), timedelta(days=1)
    since = T0 + 9 * hour  # the first post came on Monday at 09:00
    start = T0 + 2 * day + 12 * hour  # Wednesday noon
    history = {since: 4, since + day: 2, T0 + day + 10 * hour: 6, T0 + 2 * day + 11 * hour: 3}
    ahead = dict(forecast(history, start, since=since))
    # Thursday 09:00: Monday, Tuesday and Wednesday at 09:00 were seen: (4 + 2 + 0) / 3.
    assert ahead[T0 + 3 * day + 9 * hour] == 2.0
    assert ahead[T0 + 3 * day + 10 * hour] == 2.0  # (0 + 6 + 0) / 3
    assert ahead[T0 + 3 * day + 11 * hour] == 1.0  # (0 + 0 + 3) / 3
    # Wednesday 13:00: Monday's and Tuesday's 13:00 (Wednesday's is still to come): none.
    assert ahead[start + hour] == 0.0
    # Thursday 12:00: Monday, Tuesday (0 each); Wednesday's noon is the current hour.
    assert ahead[T0 + 3 * day + 12 * hour] == 0.0
    assert sum(ahead.values()) > 0 and len(ahead) == 168


def test_a_large_queue_is_staffed_with_a_margin_of_the_order_of_its_square_root() -> None:
    """At 2,000 Erlangs (2,000 posts an hour held an hour each), answered within a minute:
    the positions found (by one pass of the recursion) are the fewest that meet the level,
    and one fewer does not."""
    model = ErlangC(transactions=2000, aht=60, asa=1, interval=60)
    staff = model.required(0.8)
    assert 2000 + 10 < staff.raw_positions < 2000 + 100
    assert model.service_level(staff.raw_positions) >= 0.8
    assert model.service_level(staff.raw_positions - 1) < 0.8
    assert 0 < model.waiting_probability(staff.raw_positions) < 1


@pytest.mark.parametrize(
    "wrong", [{"service_level": 0.1}, {"max_occupancy": 1e-300}, {"shrinkage": 0.9}]
)
def test_a_staffing_target_outside_its_sense_is_refused(wrong: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be between"):
        Target(**wrong)
