"""The scan test over several hours (``detectors.windows``): a night surge that never puts ``min_count``
comments into one hour fires as one window, which starts and ends with the surge (incident scenario 1012,
seed 1: app in us-west, 7-9 comments an hour against about one, was missed by every series)."""

from __future__ import annotations

import numpy as np

from nlp_service.anomaly.detectors import SeasonalSpikeDetector, Series
from nlp_service.anomaly.rules import scan_series
from nlp_service.anomaly.series import SeriesSet
from nlp_service.config import Settings
from nlp_service.incidents.scenarios import REGIONS, TOPICS, scenario

HOUR = 3600


def _night_surge(seed: int = 7) -> tuple[np.ndarray, int, int]:
    """Three weeks of about one comment an hour (Poisson), then 6 hours of about 7 each."""
    rng = np.random.default_rng(seed)
    values = rng.poisson(1.0, 21 * 24).astype(np.float64)
    start, end = 20 * 24 + 1, 20 * 24 + 7
    values[start:end] = rng.poisson(7.0, end - start)
    return values, start, end


def _detector(windows: tuple[int, ...]) -> SeasonalSpikeDetector:
    return SeasonalSpikeDetector(
        season_seconds=86400, level_window=24, dispersion_window=168, windows=windows
    )


def test_a_surge_below_the_hourly_volume_guard_fires_as_a_window() -> None:
    values, start, end = _night_surge()
    assert values[start:end].max() < 10  # no single hour can pass min_count
    series = Series(HOUR * np.arange(values.size, dtype=np.int64), values, HOUR)
    assert _detector(()).fit(series).predict() == ()
    spikes = _detector((3, 6)).fit(series).predict()
    assert spikes, "the window test finds the surge"
    for sp in spikes:  # tight: every window lies inside the surge
        assert sp.kind == "spike" and sp.width in (3, 6)
        assert start <= sp.index - sp.width + 1 and sp.index < end
        assert sp.observed == values[sp.index - sp.width + 1 : sp.index + 1].sum()
        assert sp.p_value <= 1e-4 and sp.observed >= 1.5 * sp.expected


def test_windows_leave_single_buckets_as_they_were() -> None:
    rng = np.random.default_rng(3)
    values = rng.poisson(5.0, 21 * 24).astype(np.float64)
    values[400] = 40.0  # one strong hour
    series = Series(HOUR * np.arange(values.size, dtype=np.int64), values, HOUR)
    alone = _detector(()).fit(series).predict()
    with_windows = _detector((3, 6)).fit(series).predict()
    assert 400 in [sp.index for sp in alone]
    assert [sp for sp in with_windows if sp.width == 1] == list(alone)


def test_the_missed_night_surge_of_scenario_1012_fires_with_its_hours() -> None:
    sc = scenario(1012)
    surge = sc.events[0]
    key = ("app", "region", surge.region)
    values = sc.counts[TOPICS.index("app"), REGIONS.index(surge.region)].astype(np.float64)
    ss = SeriesSet("hour", sc.start, values.size, {key: values})
    window = (sc.start.timestamp() + HOUR * surge.start, sc.start.timestamp() + HOUR * surge.end)

    def overlapping(settings: Settings) -> list[tuple[float, float]]:
        found = scan_series(key, values, ss, settings, scan=14 * 24)
        spans = [(f.start.timestamp(), f.end.timestamp()) for f in found if f.kind == "spike"]
        return [s for s in spans if window[0] - HOUR <= s[0] and s[1] <= window[1]]

    assert not overlapping(Settings(alert_hour_windows=[]))
    assert overlapping(Settings())  # default: 3 and 6 hours


def test_a_window_is_graded_on_its_excess_per_hour() -> None:
    from datetime import UTC, datetime, timedelta

    from nlp_service.anomaly import explain
    from nlp_service.anomaly.episodes import _excess
    from nlp_service.anomaly.rules import Firing

    at = datetime(2024, 1, 28, 18, tzinfo=UTC)
    six_hours = Firing("hour", "app", "region", "us-west", "spike", "up", at, at + timedelta(hours=6),
                       41.0, 11.0, 6.5, 1e-9, buckets=6)  # fmt: skip
    assert _excess(six_hours) == 5.0
    assert explain.severity(six_hours.score, _excess(six_hours)) == "low"  # 30 in total would be medium
    assert explain.severity(six_hours.score, 30.0) == "medium"


def test_the_joint_test_reads_a_window_against_the_larger_of_its_two_expectations() -> None:
    from nlp_service.anomaly.detectors.windows import rolling_sum

    rng = np.random.default_rng(5)
    values = rng.poisson(2.0, 21 * 24).astype(np.float64)
    det = _detector((3, 6)).fit(Series(HOUR * np.arange(values.size, dtype=np.int64), values, HOUR))
    sc = det.scores_
    assert sc is not None and sc.window is not None
    last_week = slice(-7 * 24, None)
    for w in sc.window.each:
        assert w.joint is not None
        hours = rolling_sum(sc.expected, w.width)[last_week]  # the sum of the window's hours' expectations
        own, larger = w.expected[last_week], w.joint.expected[last_week]
        assert np.allclose(larger, np.maximum(own, hours))
        assert (larger > own).any() and (larger == own).any()  # either may be the larger
        assert (w.joint.p_upper >= w.p_upper).all()  # never more significant than the window alone
