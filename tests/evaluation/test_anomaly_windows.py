"""The windows-of-hours evaluation scores both settings on the same series and reports both."""

from __future__ import annotations

from evaluation.anomaly_windows import evaluate_windows, windows_report


def test_off_and_on_on_the_same_series() -> None:
    r = evaluate_windows(n_series=12, seed=0)
    assert set(r) == {"off", "on"}
    # windows add spike firings (never in a bucket that spikes alone): what was found stays found
    assert r["on"]["surge_recall"] >= r["off"]["surge_recall"] > 0
    assert r["on"]["false_per_1000_series_days"] >= r["off"]["false_per_1000_series_days"]
    assert windows_report(r, 12).count("\n|") == 4
