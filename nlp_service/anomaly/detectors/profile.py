"""The profile model of one segment value's topics (pure, no database): each topic's hourly expectation from
its own level and the *shape* of the segment value's total.

A topic of one region at a few comments an hour cannot say much about its own Saturday evenings: two or
three earlier weeks give a handful of comments per hour of the week, and the hourly model (the six days
before) expects a weekday's traffic on a weekend. The segment value's total (every comment of the region,
tens an hour) can: its shape is measured on far more comments, and the topic only has to supply its level.
For the hours of day ``d``:

* hour-of-day shape ``h[j]``: the total's comments at hour ``j`` over the ``HOD_DAYS`` days before ``d``
  (with the neighbouring hours, circularly), divided by their mean over the day, so it averages 1;
* day-of-week factor ``f``: day ``d - 7k``'s total against the mean day of the week around it
  (``k = 1..WEEKS``, where there), averaged over ``k``;
* level ``L``: the topic's mean hourly count over the seven days before ``d`` (a whole week, so its own
  weekday mix averages out);
* expectation ``L f h[j]``; its relative variance (each estimate's Poisson part, ``1 / count``) is the
  overdispersion ``alpha`` of a negative binomial around it, so a profile read from few comments is
  trusted less. The errors of ``f`` and ``h`` are shared by the topics of one segment value.

Days before ``MIN_DAYS`` whole days of history have no expectation (NaN). The shape is estimated from the
past only (no look-ahead), so a surge inflates what comes after it (conservative), never what it is tested
against. Only the joint test uses it (``anomaly.joint``, baseline ``profile``): the topics of one segment
value up together over a window of hours.
"""

from __future__ import annotations

import numpy as np

from nlp_service.anomaly.detectors.base import FloatArray

HOD_DAYS = 14
"""Days before a day whose total gives its hour-of-day shape."""
WEEKS = 3
"""Earlier weeks whose same weekday gives a day's day-of-week factor."""
MIN_DAYS = 8
"""Whole days of history a day needs for an expectation (a week of level and one earlier same weekday)."""
HOURS = 24
WEEK_DAYS = 7


def profile_expectation(
    topics: FloatArray, total: FloatArray, first_hour: int, since: int = 0
) -> tuple[FloatArray, FloatArray]:
    """The expectation and overdispersion ``(mu, alpha)`` of ``topics`` (topics x hours of one segment
    value) from ``total`` (the segment value's hourly total); ``first_hour`` is the hour of day (0-23, UTC)
    of the first bucket. NaN where there is too little history, where a topic had no comment in the week
    before (its level is unknown: an expectation of 0 would make any comment infinitely significant), where a
    bucket is missing (NaN), and before bucket ``since`` (the days before the one holding it are not
    computed: a scan needs the newest only)."""
    k, n = topics.shape
    pad = first_hour % HOURS
    days = -(-(pad + n) // HOURS)
    grid = np.full((k + 1, days * HOURS), np.nan)
    grid[:k, pad : pad + n] = topics
    grid[k, pad : pad + n] = total
    by_day = grid.reshape(k + 1, days, HOURS)
    day_sums = np.nansum(by_day, axis=2)  # (k + 1, days)
    tot_hours, tot_days = np.nan_to_num(by_day[k]), day_sums[k]
    mu = np.full((k, days, HOURS), np.nan)
    alpha = np.full((k, days, HOURS), np.nan)
    for d in range(max(MIN_DAYS, (pad + since) // HOURS), days):
        hod_raw = tot_hours[max(0, d - HOD_DAYS) : d].sum(axis=0)
        hod_sum = np.roll(hod_raw, 1) + hod_raw + np.roll(hod_raw, -1)
        factor, factor_n = _day_factor(tot_days, d)
        own = day_sums[:k, d - WEEK_DAYS : d].sum(axis=1)  # (k,)
        if hod_sum.sum() <= 0 or factor_n <= 0:
            continue
        shape = hod_sum / hod_sum.mean()
        mu[:, d] = (own / (WEEK_DAYS * HOURS))[:, None] * (factor * shape)[None, :]
        alpha[:, d] = (1.0 / np.maximum(hod_sum, 1.0))[None, :] + 1.0 / factor_n
        alpha[:, d] += (1.0 / np.maximum(own, 1.0))[:, None]
        mu[own <= 0, d] = np.nan  # no comment in the week before: the topic's level is unknown
    mu_flat = mu.reshape(k, -1)[:, pad : pad + n]
    mu_flat[np.isnan(topics)] = np.nan
    return mu_flat, alpha.reshape(k, -1)[:, pad : pad + n]


def _day_factor(day_totals: FloatArray, d: int) -> tuple[float, float]:
    """Day ``d``'s day-of-week factor (the same weekday in up to ``WEEKS`` earlier weeks against the mean day
    of the week around each) and the comments it rests on (0: no earlier week)."""
    factors: list[float] = []
    rests_on = 0.0
    for k in range(1, WEEKS + 1):
        dd = d - WEEK_DAYS * k
        if dd < 0:
            break
        around = day_totals[max(0, dd - 3) : min(d, dd + 4)]
        mean_day = float(around.mean())
        if mean_day <= 0:
            continue
        factors.append(float(day_totals[dd]) / mean_day)
        rests_on += float(day_totals[dd])
    return (float(np.mean(factors)), rests_on) if factors else (0.0, 0.0)
