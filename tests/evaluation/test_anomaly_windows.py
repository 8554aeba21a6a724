"""The windows-of-hours evaluation scores both settings on the same series and reports both."""

from __future__ import annotations

import pytest

from evaluation.anomaly_windows import (
    evaluate_hourly_null,
    evaluate_windows,
    hourly_null_report,
    windows_report,
)
from nlp_service.anomaly.sensitivity import SENSITIVITIES


def test_off_and_on_on_the_same_series() -> None:
    r = evaluate_windows(n_series=12, seed=0)
    assert set(r) == {"off", "on"}
    # windows add spike firings (never in a bucket that spikes alone): what was found stays found
    assert r["on"]["surge_recall"] >= r["off"]["surge_recall"] > 0
    assert r["on"]["false_per_1000_series_days"] >= r["off"]["false_per_1000_series_days"]
    assert windows_report(r, 12).count("\n|") == 4


def test_hourly_null_rates_per_preset() -> None:
    r = evaluate_hourly_null(n_series=12, seed=0)
    assert list(r) == list(SENSITIVITIES)
    for m in r.values():
        assert m["all"] == pytest.approx(m["spike"] + m["drop"] + m["level_shift"], abs=0.02)
    assert r["low"]["all"] <= r["high"]["all"] and r["high"]["all"] > 0  # high alerts on noise at times
    assert hourly_null_report(r, 12).count("\n|") == 2 + len(SENSITIVITIES)
