"""An hourly expectation read from a few earlier counts is itself uncertain (``baseline_samples``): tested as
if exact, a bucket whose expectation came out low by chance passed for a spike far more often than its
p-value said (the null alerts of the incident scenarios: expectations about half the true mean)."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_service.anomaly import rules
from nlp_service.anomaly.detectors import SeasonalSpikeDetector, Series
from nlp_service.anomaly.detectors.seasonal import PRIOR_COMMENTS
from nlp_service.anomaly.sensitivity import Thresholds
from nlp_service.anomaly.synthetic import seasonal_mean
from nlp_service.config import Settings

SCANNED = 14 * 24  # the last 14 of 28 days, as a detection run scans them


def _null_hourly(n_series: int = 200, seed: int = 7) -> list[Series]:
    """Poisson hours at 0.5-2 comments an hour with the daily and weekly cycle, no event."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_series):
        ts, mean = seasonal_mean(28 * 24, base=float(rng.uniform(0.5, 2.0)), bucket_seconds=3600)
        out.append(Series(ts, rng.poisson(mean).astype(np.float64), 3600))
    return out


def _detector(p: float, samples: float) -> SeasonalSpikeDetector:
    """The service's hourly model (single hours) with the volume guards out of the way (so the p-values alone
    decide) and ``samples`` counts behind an expectation."""
    settings = Settings(alert_min_volume=1, alert_hour_windows=[])
    det = rules.spike_detector(
        settings, "hour", Thresholds(p, min_ratio=1.0, min_excess=1.0, min_relative_change=0.25)
    )
    det.baseline_samples = samples
    return det


def _false_share(series: list[Series], p: float, samples: float) -> float:
    """Null buckets of the scanned days at ``p_upper <= p``, as a multiple of ``p`` (1: what p promises)."""
    hits = total = 0
    for fitted in _detector(p, samples).fit_many(series):
        sc = fitted.scores_
        assert sc is not None
        hits += int(((sc.p_upper <= p) & sc.guard_up)[SCANNED:].sum())
        total += sc.p_upper[SCANNED:].size
    return hits / total / p


@pytest.mark.parametrize("p", [1e-2, 1e-3])
def test_null_hours_of_a_few_comments_pass_as_often_as_their_p_value_says(p: float) -> None:
    series = _null_hourly()
    assert _false_share(series, p, 0.0) > 3  # as if exact: 3x (p 0.01) to 15x (p 0.001) what p promises
    assert _false_share(series, p, rules.HOUR_BASELINE_SAMPLES) <= 1.0


def test_the_expectation_shown_stays_and_its_error_widens_the_test() -> None:
    series = _null_hourly(n_series=20)
    (plain,) = _detector(1e-4, 0.0).fit_many(series[:1])
    (counted,) = _detector(1e-4, 2.5).fit_many(series[:1])
    a, b = plain.scores_, counted.scores_
    assert a is not None and b is not None
    assert np.array_equal(a.expected, b.expected, equal_nan=True)  # what an alert shows as expected
    ok = ~np.isnan(b.expected)
    assert np.all(b.alpha[ok] >= 1.0 / (2.5 * b.expected[ok] + PRIOR_COMMENTS) - 1e-12)
    assert np.all(b.alpha[ok] >= a.alpha[ok])
    up = a.guard_up & b.guard_up
    assert np.all(b.p_upper[up] >= a.p_upper[up])  # never more significant than tested as exact


def test_the_service_counts_it_for_hours_only() -> None:
    settings = Settings()
    assert rules.spike_detector(settings, "hour").baseline_samples == rules.HOUR_BASELINE_SAMPLES > 0
    assert rules.spike_detector(settings, "day").baseline_samples == 0.0
