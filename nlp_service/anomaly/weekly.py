"""The weekly-pattern check (pure, no database): a change the same hours of earlier weeks already show is the
week, not a change.

The hourly detectors model a daily season only, so the weekend step (Saturday's hours below Friday's,
Monday's above Sunday's) reads as a level shift or a drop. For a firing at bucket ``index`` the same phase of
each earlier week (``index - k * period``, up to ``MAX_WEEKS``) gives what the week alone does there: for a
level shift the step from the ``width`` buckets before to the ``width`` from the phase (ratio of means), for a
drop the ratio of the counts to the detector's own baseline around the phase. The median over weeks scales
the expectation; the firing stays only if it still passes its effect-size guards against that expectation
(a x0.4 drop on top of a x0.6 weekend step still does). A spike of one bucket is checked the same way
against its own hour of earlier weeks (Monday's first hours read as spikes while the baseline still follows
Sunday down), and must also keep its significance there; a window of hours is already tested against the
same hours of earlier weeks.
"""

from __future__ import annotations

import numpy as np

from nlp_service.anomaly.detectors.base import FloatArray
from nlp_service.anomaly.detectors.negbin import nb_tail

MAX_WEEKS = 4  # earlier weeks compared at most
SHIFT_WIDTH = 24  # buckets either side of a level shift compared at most (a day of hours)
DROP_HALF_WIDTH = 2  # buckets either side of a drop's phase pooled per earlier week
SPIKE_HALF_WIDTH = 0  # ... of a spike's: its own hour only (Monday's first hours, not Sunday's last too)


def _phases(index: int, period: int, reach: int) -> list[int]:
    """``index - k * period`` for the earlier weeks (newest first) that keep ``reach`` buckets before them."""
    return [index - k * period for k in range(1, MAX_WEEKS + 1) if index - k * period - reach >= 0]


def _mean(values: FloatArray) -> float:
    return float(np.nanmean(values)) if values.size and not np.isnan(values).all() else float("nan")


def weekly_step(values: FloatArray, index: int, before: int, after: int, period: int) -> float | None:
    """The median over earlier weeks of ``(mean of the after buckets from the phase + 1) / (mean of the
    before buckets before it + 1)``; None without an earlier week with data on both sides."""
    steps = []
    for p in _phases(index, period, before):
        old, new = _mean(values[p - before : p]), _mean(values[p : p + after])
        if not (np.isnan(old) or np.isnan(new)):
            steps.append((new + 1.0) / (old + 1.0))
    return float(np.median(steps)) if steps else None


def shift_explained(
    levels: FloatArray,
    index: int,
    span: tuple[int, int],
    period: int,
    *,
    min_abs_change: float,
    min_relative_change: float,
) -> bool:
    """Whether the week explains a level shift starting at ``index``: its new level (mean of the
    ``span[1]`` buckets from ``index``) is within the shift guards of the old level (mean of the ``span[0]``
    before) times the weekly step over the same spans at that phase. ``levels``: the series as the change
    point detector measures it (deseasonalised by the daily season)."""
    before, after = min(span[0], index), span[1]
    step = weekly_step(levels, index, before, after, period)
    if step is None or before < 1 or index + after > levels.size:
        return False
    old, new = _mean(levels[index - before : index]), _mean(levels[index : index + after])
    if np.isnan(old) or np.isnan(new):
        return False
    expected = (old + 1.0) * step - 1.0
    change = abs(new - expected)
    return change < min_abs_change or change < min_relative_change * max(new, expected)


def weekly_ratio(
    values: FloatArray,
    baseline: FloatArray,
    index: int,
    period: int,
    half_width: int = DROP_HALF_WIDTH,
    every: bool = False,
) -> float | None:
    """The median (with ``every``: the smallest) over earlier weeks of ``(counts + 1) / (baseline + 1)``
    summed over ``half_width`` buckets either side of the phase (where both are known); None without such a
    week."""
    h = half_width
    ratios = []
    for p in _phases(index, period, h):
        x, b = values[p - h : p + h + 1], baseline[p - h : p + h + 1]
        known = ~np.isnan(x) & ~np.isnan(b)
        if known.any():
            ratios.append((float(x[known].sum()) + 1.0) / (float(b[known].sum()) + 1.0))
    if not ratios:
        return None
    return float(min(ratios) if every else np.median(ratios))


def _against_week(
    values: FloatArray, baseline: FloatArray, index: int, period: int, half_width: int, every: bool
) -> tuple[float, float] | None:
    """The count at ``index`` and its expectation scaled by the weekly ratio at that phase; None without an
    earlier week to compare or where either is missing."""
    ratio = weekly_ratio(values, baseline, index, period, half_width, every)
    if ratio is None or np.isnan(baseline[index]) or np.isnan(values[index]):
        return None
    return float(values[index]), (float(baseline[index]) + 1.0) * ratio - 1.0


def drop_explained(
    values: FloatArray, baseline: FloatArray, index: int, period: int, *, min_excess: float, min_ratio: float
) -> bool:
    """Whether the week explains a drop at ``index``: against the baseline times the weekly ratio at that
    phase, the count is no longer a drop by its effect size (``min_excess`` below the expectation and
    ``min_ratio`` times under it; the volume guard stays the detector's)."""
    found = _against_week(values, baseline, index, period, DROP_HALF_WIDTH, False)
    if found is None:
        return False
    x, m = found
    return not (m - x >= min_excess and x * min_ratio <= m)


def spike_explained(
    values: FloatArray,
    baseline: FloatArray,
    index: int,
    period: int,
    *,
    alpha: float,
    min_excess: float,
    min_ratio: float,
    p_threshold: float,
) -> bool:
    """Whether the week explains a one-bucket spike at ``index`` (Monday morning's hours above a baseline
    that followed the weekend down): against the baseline times the weekly ratio at that phase (its own hour
    in each earlier week), the count is no longer a spike by its effect size (``min_excess`` above the
    expectation and ``min_ratio`` times it) or by its significance (the detector's negative binomial with
    overdispersion ``alpha`` at ``index``: upper tail above ``p_threshold``)."""
    found = _against_week(values, baseline, index, period, SPIKE_HALF_WIDTH, True)
    if found is None or np.isnan(alpha):
        return False
    x, m = found
    if not (x - m >= min_excess and x >= min_ratio * m):
        return True
    one = np.ones(1, dtype=bool)
    p = nb_tail(
        np.array([round(x)], dtype=np.float64),
        np.array([max(m, 1e-3)]),
        np.array([alpha]),
        one,
        upper=True,
    )
    return float(p[0]) > p_threshold
