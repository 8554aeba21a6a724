"""What the windows of hours (``detectors.windows``, ``NLP_ALERT_HOUR_WINDOWS``) find and cost, per series.

Seeded hourly Poisson series with the incident scenarios' weekly and daily cycle (``anomaly.synthetic.
seasonal_mean``), 28 days, base 1-6 comments an hour (the scenarios' per-topic, per-region rates):
``null`` without an event, ``surge`` with one x3-6 rise for 6-24 hours in the last 10 days. One scan of the
last 14 days (``rules.scan_series``, default settings: medium), windows off and on:

- false alert episodes per 1,000 series-days: spike firings in null series (firings a bucket apart or
  overlapping make one episode);
- surge recall: surge series with a spike firing overlapping the rise (3 hours of slack).

:func:`evaluate_hourly_null` gives the false-alert rate of each sensitivity preset on the same null series
(every kind: spikes, drops, level shifts; the defaults otherwise), per 1,000 series-days scanned.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from nlp_service.anomaly.rules import Firing, scan_series
from nlp_service.anomaly.sensitivity import SENSITIVITIES
from nlp_service.anomaly.series import SeriesSet
from nlp_service.anomaly.synthetic import EPOCH_MONDAY, seasonal_mean
from nlp_service.config import Settings
from nlp_service.topics.tables import ALL_SEGMENT

HOUR = 3600
DAYS = 28
SCAN_DAYS = 14
SLACK = 3  # hours
KEY = ("topic", ALL_SEGMENT, ALL_SEGMENT)
START = datetime.fromtimestamp(EPOCH_MONDAY, UTC)


def make_series(rng: np.random.Generator, surge: bool) -> tuple[np.ndarray, tuple[int, int] | None]:
    """One series and its rise's hours ``[start, end)`` (None for a null series)."""
    hours = DAYS * 24
    _, mean = seasonal_mean(hours, base=float(rng.uniform(1.0, 6.0)), bucket_seconds=HOUR)
    mean = mean.copy()
    rise = None
    if surge:
        start = hours - int(rng.integers(2 * 24, 10 * 24))
        rise = (start, start + int(rng.integers(6, 25)))
        mean[rise[0] : rise[1]] *= float(rng.uniform(3.0, 6.0))
    return rng.poisson(mean).astype(np.float64), rise


def _firings(values: np.ndarray, settings: Settings) -> list[Firing]:
    ss = SeriesSet("hour", START, values.size, {KEY: values})
    return scan_series(KEY, values, ss, settings, scan=SCAN_DAYS * 24)


def _hours(f: Firing) -> tuple[int, int]:
    return (f.start - START) // timedelta(hours=1), (f.end - START) // timedelta(hours=1)


def _spans(values: np.ndarray, settings: Settings) -> list[tuple[int, int]]:
    return sorted(_hours(f) for f in _firings(values, settings) if f.kind == "spike")


def _episodes(spans: list[tuple[int, int]]) -> int:
    count, end = 0, -2
    for s, e in spans:
        count += s > end  # a bucket apart or overlapping: the same episode
        end = max(end, e)
    return count


def evaluate_windows(n_series: int = 300, seed: int = 0) -> dict[str, Any]:
    """Per setting (windows off, on): false episodes per 1,000 null series-days and surge recall."""
    rng = np.random.default_rng([seed, 15])
    null = [make_series(rng, False)[0] for _ in range(n_series)]
    surges = [make_series(rng, True) for _ in range(n_series)]
    out: dict[str, Any] = {}
    for name, windows in (("off", []), ("on", Settings().alert_hour_windows)):
        settings = Settings(alert_hour_windows=windows)
        false = sum(_episodes(_spans(v, settings)) for v in null)
        hit = 0
        for v, rise in surges:
            assert rise is not None
            hit += any(s - SLACK < rise[1] and rise[0] < e + SLACK for s, e in _spans(v, settings))
        out[name] = {
            "false_per_1000_series_days": round(1000.0 * false / (n_series * SCAN_DAYS), 2),
            "surge_recall": round(hit / n_series, 3),
        }
    return out


def evaluate_hourly_null(n_series: int = 300, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per sensitivity preset: false alert episodes per 1,000 series-days on the null series of
    :func:`evaluate_windows` (the same seed gives the same series), in all and per kind."""
    rng = np.random.default_rng([seed, 15])
    null = [make_series(rng, False)[0] for _ in range(n_series)]
    out: dict[str, dict[str, float]] = {}
    for preset in SENSITIVITIES:
        settings = Settings(alert_sensitivity=preset)
        kinds: Counter[str] = Counter()
        for v in null:
            fs = _firings(v, settings)
            for kind, direction in {(f.kind, f.direction) for f in fs}:
                spans = sorted(_hours(f) for f in fs if (f.kind, f.direction) == (kind, direction))
                kinds[kind] += _episodes(spans)
        days = n_series * SCAN_DAYS
        out[preset] = {k: round(1000.0 * kinds[k] / days, 2) for k in ("spike", "drop", "level_shift")}
        out[preset]["all"] = round(1000.0 * sum(kinds.values()) / days, 2)
    return out


def hourly_null_report(r: dict[str, dict[str, float]], n_series: int = 300) -> str:
    """The markdown section of ``python -m evaluation anomaly`` for :func:`evaluate_hourly_null`."""
    rows = "".join(
        f"| {preset} | {m['all']:.2f} | {m['spike']:.2f} | {m['drop']:.2f} | {m['level_shift']:.2f} |\n"
        for preset, m in r.items()
    )
    return (
        "\n## False alerts on hourly null data per sensitivity (evaluation/anomaly_windows.py)\n\n"
        f"The {n_series} null series above (hourly, 28 days, base 1-6 an hour, weekly and daily cycle), one "
        "scan of 14 days with the defaults at each preset; alert episodes per 1,000 series-days.\n\n"
        "| sensitivity | all | spikes | drops | level shifts |\n|---|---|---|---|---|\n" + rows
    )


def windows_report(r: dict[str, Any], n_series: int = 300) -> str:
    """The markdown section of ``python -m evaluation anomaly``."""
    rows = "".join(
        f"| {name} | {m['false_per_1000_series_days']:.2f} | {m['surge_recall']:.3f} |\n"
        for name, m in r.items()
    )
    return (
        "\n## Windows of hours (NLP_ALERT_HOUR_WINDOWS; evaluation/anomaly_windows.py)\n\n"
        f"{n_series} null and {n_series} surge series, hourly, 28 days, base 1-6 an hour, "
        "one scan of 14 days.\n\n"
        "| windows | false episodes / 1,000 series-days | surge recall |\n|---|---|---|\n" + rows
    )


if __name__ == "__main__":
    print(windows_report(evaluate_windows()) + hourly_null_report(evaluate_hourly_null()))
