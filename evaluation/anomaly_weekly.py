"""What the weekly-pattern check (``anomaly.weekly``, ``alert_weekly_check``) costs and saves, hourly.

Seeded hourly Poisson streams with the generator's weekly and daily cycle (``anomaly.synthetic``: weekends at
70% of the mean, weekdays at 112%, a daytime peak), 28 days, base 5-40 comments an hour (log-uniform), one
scan of the last 14 days (``rules.scan_series``, default settings: medium), with the check on and off:

- ``null``: no event; every level shift or drop is false (the weekend step read as a change), and every spike
  (Monday's first hours read as one);
- ``weekend_drop``: a x0.4 drop for 6-24 hours starting at the Saturday 00:00 step (night hours) of the
  second or third week scanned: found when a drop or a downward level shift overlaps it (2 hours of slack);
- ``weekday_drop``: the same drop starting at a random weekday hour (a control: the check should not matter);
- ``monday_spike``: a x3 rise for 1-3 hours starting in the first six hours of a Monday scanned (the hours the
  spike check touches): found when a spike overlaps it (its cost);
- ``weekday_spike``: the same rise on a Tuesday, Wednesday or Thursday (a control: how often such a rise is
  found where the baseline knows the day).

Drop families count level shifts and drops (found, else false); spike families count spikes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from nlp_service.anomaly.rules import Firing, scan_series
from nlp_service.anomaly.series import SeriesSet
from nlp_service.anomaly.synthetic import EPOCH_MONDAY, Event, generate
from nlp_service.config import Settings
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS

FAMILIES = ("null", "weekend_drop", "weekday_drop", "monday_spike", "weekday_spike")
DAYS = 28
SCAN_DAYS = 14
SLACK = 2  # hours
KEY = ("topic", ALL_SEGMENT, ALL_SEGMENT)
TOTAL_KEY = (ALL_TOPICS, ALL_SEGMENT, ALL_SEGMENT)
START = datetime.fromtimestamp(EPOCH_MONDAY, UTC)


def make_stream(family: str, rng: np.random.Generator) -> tuple[np.ndarray, Event | None]:
    """One hourly stream of ``family`` and its event (None for ``null``)."""
    n = DAYS * 24
    base = float(np.exp(rng.uniform(np.log(5.0), np.log(40.0))))
    event = None
    if family.endswith("_spike"):
        day = int(rng.integers(2, 4)) * 7 + (0 if family == "monday_spike" else int(rng.integers(1, 4)))
        start = day * 24 + int(rng.integers(6))  # 00-05 of a Monday (day 14 or 21) or of a Tuesday-Thursday
        event = Event("spike", start, start + int(rng.integers(1, 4)) - 1, 3.0)
    elif family != "null":
        length = int(rng.integers(6, 25))
        if family == "weekend_drop":
            start = (int(rng.integers(2, 4)) * 7 + 5) * 24  # Saturday 00:00 of week 3 or 4 (days 19, 26)
        else:
            start = int(rng.integers(15, 25)) * 24 + int(rng.integers(24))
            while (start // 24) % 7 >= 4 or start + length >= n:  # Monday-Thursday starts, within the data
                start = int(rng.integers(15, 25)) * 24 + int(rng.integers(24))
        event = Event("drop", start, min(start + length, n) - 1, 0.4)
    s = generate(n, base=base, bucket_seconds=3600, events=(event,) if event else (), seed=rng)
    return s.series.values, event


def firings(values: np.ndarray, settings: Settings) -> list[Firing]:
    """The firings of one scan of the last ``SCAN_DAYS`` days."""
    ss = SeriesSet("hour", START, values.size, {KEY: values, TOTAL_KEY: 4.0 * values + 1.0})
    return scan_series(KEY, values, ss, settings, scan=SCAN_DAYS * 24)


def _changes(fs: list[Firing]) -> list[Firing]:
    return [f for f in fs if f.direction == "down" or f.kind == "level_shift"]


def _spikes(fs: list[Firing]) -> list[Firing]:
    return [f for f in fs if f.kind == "spike"]


def _hour(f: Firing) -> tuple[int, int]:
    return int((f.start - START).total_seconds()) // 3600, int((f.end - START).total_seconds()) // 3600


def evaluate_weekly(n_streams: int = 150, seed: int = 0) -> dict[str, Any]:
    """Per family, check off and on: events found (recall), false shifts/drops and false spikes per stream."""
    out: dict[str, Any] = {}
    for family in FAMILIES:
        rng = np.random.default_rng([seed, FAMILIES.index(family)])
        streams = [make_stream(family, rng) for _ in range(n_streams)]
        for check in (False, True):
            settings = Settings(alert_weekly_check=check)
            found = false_changes = false_spikes = 0
            for values, ev in streams:
                fs = firings(values, settings)
                changes, spikes = _changes(fs), _spikes(fs)
                hit = [] if ev is None else [f for f in _tracked(ev, changes, spikes) if _overlaps(f, ev)]
                found += bool(hit)
                false_changes += sum(1 for f in changes if f not in hit)
                false_spikes += sum(1 for f in spikes if f not in hit)
            key = f"{family}.{'on' if check else 'off'}"
            out[key] = {
                "recall": round(found / n_streams, 3) if family != "null" else None,
                "false_per_stream": round(false_changes / n_streams, 3),
                "false_spikes_per_stream": round(false_spikes / n_streams, 3),
            }
    return out


def _tracked(ev: Event, changes: list[Firing], spikes: list[Firing]) -> list[Firing]:
    """The firings that can find ``ev``: spikes for a rise, downward changes for a drop."""
    return spikes if ev.kind == "spike" else [f for f in changes if f.direction == "down"]


def _overlaps(f: Firing, ev: Event) -> bool:
    start, end = _hour(f)
    return start - SLACK <= ev.end and ev.start <= end + SLACK


def weekly_report(r: dict[str, Any], n_streams: int = 150) -> str:
    """The markdown section of ``python -m evaluation anomaly``: a table of ``evaluate_weekly``'s result."""
    head = (
        f"| family ({n_streams} hourly streams each) | recall off -> on | false shifts/drops per stream "
        "| false spikes per stream |"
    )
    lines = [head, "|---|---:|---:|---:|"]
    for family in FAMILIES:
        off, on = r[f"{family}.off"], r[f"{family}.on"]
        recall = "-" if off["recall"] is None else f"{off['recall']:.3f} -> {on['recall']:.3f}"
        false = f"{off['false_per_stream']:.2f} -> {on['false_per_stream']:.2f}"
        spikes = f"{off['false_spikes_per_stream']:.2f} -> {on['false_spikes_per_stream']:.2f}"
        lines.append(f"| {family} | {recall} | {false} | {spikes} |")
    title = "\n## Weekly-pattern check on hourly streams (alert_weekly_check off -> on)\n\n"
    return title + "\n".join(lines) + "\n"
