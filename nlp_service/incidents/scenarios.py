"""Seeded multi-series scenarios with known incidents: topics x regions of hourly counts (for the incident
evaluation and tests).

Each topic x region series is Poisson with a seasonal mean (weekend dip, daytime peak:
``anomaly.synthetic.seasonal_mean``). Events multiply the mean over a span of hours:

- a *surge*: one region, several topics, each starting within a few hours of the others (one incident);
- a *single*: one topic in one region (its own incident), sometimes at the same time as a surge elsewhere,
  so that grouping must keep them apart.

A *null* scenario has no event: every incident found in it is a false one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from nlp_service.anomaly.synthetic import EPOCH_MONDAY, seasonal_mean

TOPICS = ("billing", "delivery", "pricing", "refunds", "support", "app")
REGIONS = ("eu-west", "eu-north", "us-east", "us-west", "apac")
HOUR = 3600


@dataclass(frozen=True)
class Event:
    """An injected incident: ``topics`` in ``region`` multiplied by ``factor`` over hours [start, end)."""

    kind: str  # surge | single
    region: str
    topics: tuple[str, ...]
    start: int
    end: int
    factor: float


@dataclass(frozen=True)
class Scenario:
    start: datetime
    hours: int
    counts: npt.NDArray[np.int64]  # (topic, region, hour)
    events: tuple[Event, ...]
    topics: tuple[str, ...] = TOPICS
    regions: tuple[str, ...] = REGIONS


def scenario(
    seed: int,
    *,
    days: int = 28,
    surge: bool = True,
    single: float = 0.5,
    event_days: int = 10,
) -> Scenario:
    """A scenario: with ``surge``, one surge of 2-4 topics in one region within the last ``event_days``
    days (x3-6 for 6-24 hours); with probability ``single`` (and only with a surge) a single-topic spike in
    another region, overlapping the surge half of the time. Base rates 1-6 comments per topic, region and
    hour."""
    rng = np.random.default_rng(seed)
    hours = days * 24
    nt, nr = len(TOPICS), len(REGIONS)
    mean = np.empty((nt, nr, hours))
    for t in range(nt):
        for r in range(nr):
            _, m = seasonal_mean(hours, base=float(rng.uniform(1.0, 6.0)), bucket_seconds=HOUR)
            mean[t, r] = m
    events: list[Event] = []
    if surge:
        region = int(rng.integers(nr))
        k = int(rng.integers(2, 5))
        topics = sorted(int(i) for i in rng.choice(nt, size=k, replace=False))
        start = hours - int(rng.integers(2 * 24, event_days * 24))
        length = int(rng.integers(6, 25))
        factor = float(rng.uniform(3.0, 6.0))
        for t in topics:
            s = start + int(rng.integers(0, 4))
            mean[t, region, s : s + length] *= factor
        events.append(
            Event(
                "surge", REGIONS[region], tuple(TOPICS[t] for t in topics), start, start + length + 3, factor
            )
        )
        if rng.random() < single:
            other = int(rng.choice([r for r in range(nr) if r != region]))
            t = int(rng.integers(nt))
            at = start if rng.random() < 0.5 else hours - int(rng.integers(2 * 24, event_days * 24))
            n = int(rng.integers(4, 13))
            f = float(rng.uniform(4.0, 6.0))
            mean[t, other, at : at + n] *= f
            events.append(Event("single", REGIONS[other], (TOPICS[t],), at, at + n, f))
    counts = rng.poisson(np.maximum(mean, 0.0)).astype(np.int64)
    start_dt = datetime.fromtimestamp(EPOCH_MONDAY, UTC)
    return Scenario(start=start_dt, hours=hours, counts=counts, events=tuple(events))
