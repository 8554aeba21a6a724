"""Seeded synthetic topic-volume streams with known anomalies (for tests, evaluation and benchmarks).

A stream is Poisson with mean ``base * weekly[day_of_week] * daily[hour]`` (daily only for sub-daily
buckets); events multiply that mean: ``spike`` (x``factor`` for 1-3 buckets), ``drop`` (x``factor`` < 1
for 1-3 buckets) and ``shift`` (x``factor`` from ``start`` to the end). Events that are *not* anomalies to
report (``Event.reportable`` is false), for CX-like streams: ``holiday`` (x``factor`` < 1 over
``start``..``end``, like a drop), ``drift`` (the mean ramps linearly from x1 at ``start`` to x``factor`` at
``end`` and stays there) and ``gap`` (a collection gap: no comments over ``start``..``end``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict, Unpack

import numpy as np

from nlp_service.anomaly.detectors.base import FloatArray, Series

EventKind = Literal["spike", "drop", "shift", "holiday", "drift", "gap"]
DAY = 86400
WEEK = 7 * DAY
# 2024-01-01 00:00 UTC, a Monday: day-of-week slots line up with calendar weeks
EPOCH_MONDAY = 1_704_067_200


@dataclass(frozen=True)
class Event:
    """An injected anomaly over buckets ``start``..``end`` (inclusive); shifts last to the end."""

    kind: EventKind
    start: int
    end: int
    factor: float

    @property
    def reportable(self) -> bool:
        """An anomaly the detector should report (holidays, slow drifts and collection gaps are not)."""
        return self.kind in ("spike", "drop", "shift")


@dataclass(frozen=True)
class SyntheticSeries:
    """A generated series, its noise-free mean and the injected events."""

    series: Series
    mean: FloatArray
    events: tuple[Event, ...] = field(default_factory=tuple)


def seasonal_mean(
    n: int,
    *,
    base: float,
    bucket_seconds: int = DAY,
    weekly_amplitude: float = 0.3,
    daily_amplitude: float = 0.5,
    start: int = EPOCH_MONDAY,
) -> tuple[np.ndarray, FloatArray]:
    """Timestamps and the seasonal Poisson mean (weekend dip, daytime peak for sub-daily buckets)."""
    ts = start + bucket_seconds * np.arange(n, dtype=np.int64)
    dow = ((ts - EPOCH_MONDAY) // DAY) % 7
    weekly = np.where(dow >= 5, 1.0 - weekly_amplitude, 1.0 + weekly_amplitude * 2 / 5)
    mean = base * weekly
    if bucket_seconds < DAY and daily_amplitude:
        hour = ((ts % DAY) / 3600.0).astype(np.float64)
        mean = mean * (1.0 + daily_amplitude * np.sin(2 * np.pi * (hour - 9.0) / 24.0))
    return ts, mean


def generate(
    n: int,
    *,
    base: float,
    events: tuple[Event, ...] = (),
    bucket_seconds: int = DAY,
    weekly_amplitude: float = 0.3,
    daily_amplitude: float = 0.5,
    seed: int | np.random.Generator = 0,
    start: int = EPOCH_MONDAY,
) -> SyntheticSeries:
    """One Poisson stream of ``n`` buckets with the given events applied to its mean."""
    rng = np.random.default_rng(seed)
    ts, mean = seasonal_mean(
        n,
        base=base,
        bucket_seconds=bucket_seconds,
        weekly_amplitude=weekly_amplitude,
        daily_amplitude=daily_amplitude,
        start=start,
    )
    for ev in events:
        if ev.kind == "drift":
            ramp = np.minimum(1.0, (np.arange(ev.start, n) - ev.start) / max(ev.end - ev.start, 1))
            mean[ev.start :] *= 1.0 + (ev.factor - 1.0) * ramp
            continue
        end = n - 1 if ev.kind == "shift" else ev.end
        mean[ev.start : end + 1] *= 0.0 if ev.kind == "gap" else ev.factor
    values = rng.poisson(mean).astype(np.float64)
    return SyntheticSeries(Series(ts, values, bucket_seconds), mean, tuple(events))


def random_events(
    n: int,
    rng: np.random.Generator,
    *,
    n_spikes: int = 2,
    n_drops: int = 0,
    n_shifts: int = 0,
    spike_factor: tuple[float, float] = (3.0, 5.0),
    drop_factor: tuple[float, float] = (0.05, 0.2),
    shift_factor: tuple[float, float] = (1.5, 2.5),
    warmup: int = 56,
    spacing: int = 21,
) -> tuple[Event, ...]:
    """Random non-overlapping events after ``warmup`` buckets, at least ``spacing`` buckets apart.

    Shifts go up or down with equal odds (down divides by the drawn factor).
    """
    counts: dict[EventKind, int] = {"spike": n_spikes, "drop": n_drops, "shift": n_shifts}
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    slots = np.arange(warmup, n - spacing, spacing)
    if len(kinds) > slots.size:
        raise ValueError("series too short for that many events")
    starts = np.sort(rng.choice(slots, size=len(kinds), replace=False))
    rng.shuffle(kinds)
    out = []
    for kind, s in zip(kinds, starts, strict=True):
        s = int(s + rng.integers(0, spacing // 3))
        if kind == "shift":
            f = float(rng.uniform(*shift_factor))
            out.append(Event("shift", s, n - 1, f if rng.random() < 0.5 else 1.0 / f))
        else:
            lo, hi = spike_factor if kind == "spike" else drop_factor
            out.append(Event(kind, s, s + int(rng.integers(0, 3)), float(rng.uniform(lo, hi))))
    return tuple(out)


class EventOptions(TypedDict, total=False):
    """``random_events``' keyword options, passed through by ``topic_streams``."""

    n_spikes: int
    n_drops: int
    n_shifts: int
    spike_factor: tuple[float, float]
    drop_factor: tuple[float, float]
    shift_factor: tuple[float, float]
    warmup: int
    spacing: int


def topic_streams(
    n_series: int,
    n: int,
    *,
    base_range: tuple[float, float] = (20.0, 200.0),
    bucket_seconds: int = DAY,
    seed: int = 0,
    **event_kwargs: Unpack[EventOptions],
) -> list[SyntheticSeries]:
    """``n_series`` independent streams with log-uniform base volume and random events."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_series):
        base = float(np.exp(rng.uniform(np.log(base_range[0]), np.log(base_range[1]))))
        events = random_events(n, rng, **event_kwargs)
        out.append(generate(n, base=base, events=events, bucket_seconds=bucket_seconds, seed=rng))
    return out
