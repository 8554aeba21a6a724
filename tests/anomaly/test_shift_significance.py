"""Level shifts pass a test as strict as spikes: a p-value under the same threshold and a minimum effect
size, both carried by the firing (and the alert's explanation)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from nlp_service.anomaly.rules import Firing, changepoint_detector, scan_series
from nlp_service.anomaly.series import SeriesSet
from nlp_service.config import Settings

SETTINGS = Settings()
HOURS = 24 * 14


def shifts(before: float, after: float, seeds: range) -> list[Firing]:
    """Level-shift firings of hourly Poisson series whose rate moves from ``before`` to ``after`` 6 hours
    before the end, scanned as the detector scans its newest buckets."""
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        values = rng.poisson(np.r_[np.full(HOURS - 6, before), np.full(6, after)]).astype(float)
        ss = SeriesSet("hour", datetime(2026, 1, 1, tzinfo=UTC), HOURS, {("t", "all", "all"): values})
        out += [
            f
            for f in scan_series(("t", "all", "all"), values, ss, SETTINGS, scan=2)
            if f.kind == "level_shift"
        ]
    return out


def test_every_shift_carries_a_p_value_under_the_spike_threshold_and_a_minimum_effect() -> None:
    found = shifts(10.0, 20.0, range(40))
    assert len(found) >= 10  # a doubling is still found
    min_change = changepoint_detector("hour").min_relative_change
    for f in found:
        assert f.p_value is not None and f.p_value <= SETTINGS.alert_p_threshold
        assert abs(f.observed - f.expected) >= min_change * max(f.observed, f.expected)


def test_small_shifts_rarely_fire() -> None:
    # 11.6 -> 9 comments an hour (-22%, under the minimum effect): before the test, 10 of 300 series fired
    assert len(shifts(11.6, 9.0, range(300))) <= 4
    # no change at all
    assert shifts(12.0, 12.0, range(300)) == []
