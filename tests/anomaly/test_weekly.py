"""The weekly-pattern check: on hourly series (whose detectors model a daily season only) a level shift or a
drop the same hours of earlier weeks already show (the weekend step) is not raised; a change beyond it is."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from nlp_service.anomaly import weekly
from nlp_service.anomaly.rules import Firing, scan_series
from nlp_service.anomaly.series import SeriesSet
from nlp_service.anomaly.synthetic import EPOCH_MONDAY, Event, generate
from nlp_service.config import Settings
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS

WEEK = 168
KEY = ("topic", ALL_SEGMENT, ALL_SEGMENT)
SATURDAYS = (19 * 24, 26 * 24)  # Saturday 00:00 of the last two weeks of 28 days from a Monday


def _weekend_steps(weeks: int = 4, weekday: float = 20.0, weekend: float = 12.0) -> np.ndarray:
    """Noise-free hourly levels: ``weekday`` Monday-Friday, ``weekend`` on Saturdays and Sundays."""
    days = np.arange(weeks * 7 * 24) // 24 % 7
    return np.where(days >= 5, weekend, weekday).astype(np.float64)


def test_a_step_seen_at_the_same_hour_of_earlier_weeks_is_explained() -> None:
    x = _weekend_steps()
    saturday = SATURDAYS[1]
    assert weekly.weekly_step(x, saturday, 24, 24, WEEK) == (12.0 + 1) / (20.0 + 1)
    guards = {"min_abs_change": 2.0, "min_relative_change": 0.25}
    assert weekly.shift_explained(x, saturday, (24, 24), WEEK, **guards)
    deeper = x.copy()
    deeper[saturday : saturday + 12] *= 0.4  # a x0.4 drop on top of the weekend step
    assert not weekly.shift_explained(deeper, saturday, (24, 12), WEEK, **guards)
    assert not weekly.shift_explained(x, 5 * 24, (24, 24), WEEK, **guards)  # no earlier week: not explained
    wednesday = x.copy()
    wednesday[2 * WEEK + 2 * 24 :] *= 0.5  # a new level on a Wednesday, never seen there before
    assert not weekly.shift_explained(wednesday, 2 * WEEK + 2 * 24, (24, 24), WEEK, **guards)


def test_a_drop_the_week_explains_is_not_one() -> None:
    x = _weekend_steps()
    baseline = np.full(x.size, 20.0)  # a daily-season baseline that does not know the weekend
    guards = {"min_excess": 5.0, "min_ratio": 1.5}
    assert weekly.weekly_ratio(x, baseline, SATURDAYS[1] + 3, WEEK) == (5 * 12.0 + 1) / (5 * 20.0 + 1)
    assert weekly.drop_explained(x, baseline, SATURDAYS[1] + 3, WEEK, **guards)
    deeper = x.copy()
    deeper[SATURDAYS[1] : SATURDAYS[1] + 6] = 3.0
    assert not weekly.drop_explained(deeper, baseline, SATURDAYS[1] + 3, WEEK, **guards)
    assert not weekly.drop_explained(x, baseline, 5 * 24 + 3, WEEK, **guards)  # no earlier week


def _scan(values: np.ndarray, check: bool) -> list[Firing]:
    start = datetime.fromtimestamp(EPOCH_MONDAY, UTC)
    counts = {KEY: values, (ALL_TOPICS, ALL_SEGMENT, ALL_SEGMENT): 4.0 * values + 1.0}
    ss = SeriesSet("hour", start, values.size, counts)
    found = scan_series(KEY, values, ss, Settings(alert_weekly_check=check), scan=14 * 24)
    return [f for f in found if f.kind != "spike"]


def test_the_weekend_step_of_hourly_counts_fires_no_shift() -> None:
    values = generate(28 * 24, base=15.0, bucket_seconds=3600, seed=1).series.values
    off = _scan(values, check=False)
    assert {(f.kind, f.direction, f.start.strftime("%a %H")) for f in off} >= {
        ("level_shift", "down", "Sat 00")
    }
    assert _scan(values, check=True) == []


def test_a_night_drop_on_the_weekend_step_still_fires() -> None:
    drop = Event("drop", SATURDAYS[0], SATURDAYS[0] + 11, 0.4)
    values = generate(28 * 24, base=15.0, bucket_seconds=3600, seed=1, events=(drop,)).series.values
    found = [f for f in _scan(values, check=True) if f.direction == "down"]
    assert [f.start.strftime("%a %d") for f in found] == ["Sat 20"]


def test_a_one_hour_spike_every_earlier_week_shows_is_the_week() -> None:
    x = _weekend_steps()
    monday = 3 * WEEK  # Monday 00:00 of the last week
    baseline = np.full(x.size, 12.0)  # a daily-season baseline that still follows Sunday down
    guards = {"alpha": 0.0, "min_excess": 5.0, "min_ratio": 1.5, "p_threshold": 1e-4}
    assert weekly.spike_explained(x, baseline, monday, WEEK, **guards)
    bigger = x.copy()
    bigger[monday] = 60.0  # three times Monday's usual first hour
    assert not weekly.spike_explained(bigger, baseline, monday, WEEK, **guards)
    once = x.copy()
    once[WEEK + 2 * 24 + 9] = 40.0  # Wednesday 09:00 was high in one earlier week only: not the week
    once[3 * WEEK + 2 * 24 + 9] = 40.0
    flat = np.full(x.size, 20.0)
    assert not weekly.spike_explained(once, flat, 3 * WEEK + 2 * 24 + 9, WEEK, **guards)
    first = monday - 3 * WEEK  # no earlier week
    assert not weekly.spike_explained(x, baseline, first, WEEK, **guards)


def _spikes(values: np.ndarray, check: bool) -> list[str]:
    start = datetime.fromtimestamp(EPOCH_MONDAY, UTC)
    counts = {KEY: values, (ALL_TOPICS, ALL_SEGMENT, ALL_SEGMENT): 4.0 * values + 1.0}
    ss = SeriesSet("hour", start, values.size, counts)
    found = scan_series(KEY, values, ss, Settings(alert_weekly_check=check), scan=14 * 24)
    return [f.start.strftime("%a %d %H") for f in found if f.kind == "spike"]


def test_monday_first_hour_fires_no_spike_but_a_monday_surge_does() -> None:
    values = generate(28 * 24, base=25.0, bucket_seconds=3600, seed=1).series.values
    assert [s[:3] for s in _spikes(values, check=False)] == ["Mon"]  # the hour after the weekend
    assert _spikes(values, check=True) == []
    monday = 21 * 24 + 3
    surge = Event("spike", monday, monday + 2, 4.0)
    values = generate(28 * 24, base=8.0, bucket_seconds=3600, seed=0, events=(surge,)).series.values
    assert _spikes(values, check=True)[:1] == ["Mon 22 03"]
