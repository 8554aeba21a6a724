"""Surges across topics in one segment: the joint test (pure, no database).

One surge in one region often lifts several topics at once, each by too little to pass the test alone (a
day of 233 delivery comments against 145 expected is p = 1.6e-3, short of medium's 1e-4), while together
they are unmistakable. In each bucket checked, the topic series of one segment value (e.g. ``region=eu-west``)
are tested together: with ``m`` topic series there and their upper-tail p-values sorted,
``p_(1) <= p_(2) <= ...``, the chance under the null (independent series) that at least ``k`` of them are as
small as ``p_(k)`` is the binomial tail ``P(Binom(m, p_(k)) >= k)``. Those tails read only the ``k``-th
smallest p-value: a surge whose strongest topic stands out (a six-hour window at p 1e-9) and whose second
rose a little (p 2e-3) would pass for two topics at 2e-3. The *pair* statistic reads both: the chance that
one series is as small as ``p_(1)`` and another as ``p_(2)`` is at most ``m (m - 1) p_(1) p_(2)`` (the
ordered pairs). The joint p-value is the smallest of these ``m`` statistics (``k = 2..m`` and the pair),
times ``m`` (Bonferroni over the choice). The pair takes part only where the strongest member's expectation
is at least ``PAIR_MIN_EXPECTED`` comments: a window of a few expected comments is anti-conservative (its
baseline rests on a few comments of earlier weeks), and on the incident scenarios such windows with any
weak neighbour made most of the pair's false incidents. When the joint p-value passes the sensitivity's
``p_threshold``, the ``k`` series fire together, each as a ``spike`` carrying the joint p-value and the
other topics (:class:`Joint`; ``rules.joint_firings`` makes the firings).

Only buckets where a series passes every effect guard of a spike on its own (``min_count``, ``min_excess``,
``min_ratio``: the detector's ``guard_up``) and its own p-value is at most ``MEMBER_P`` take part, so a
member is a real, sizeable excess that merely lacks the significance to stand alone. Series that fired on
their own count in the test too, and their firing gains its label (a weak alert that rose with other topics
may open an incident: ``incidents.record.member_view``). Topic totals (segment ``all``) are not tested
together: a lift of every topic's total at once is mostly traffic, not one incident.

Windows of hours (``detectors.windows``, ``NLP_ALERT_JOINT_WINDOWS``) are tested the same way, per width and
last hour: a night surge of two topics, each a few comments an hour above a baseline of one or two, that
neither window passes alone. A window takes part against the larger of two expectations, its own (the same
hours of earlier weeks) and the sum of its hours' (the hourly model, resting on more days): with only two or
three earlier weeks, the first alone is often low by chance at such counts, and two such windows in one
region at once made false incidents. The test passes at the window test's stricter threshold. The topics of
one surge seldom start in the same hour, so windows of one width ending up to ``lag`` hours apart
(``NLP_ALERT_JOINT_WINDOW_LAG``) are also tested together: each series takes part with its smallest p-value
over the ``lag + 1`` last hours, times ``lag + 1`` (Bonferroni over that choice); windows ending in the same
hour are still tested as they are (the lagged test alone cost a surge whose topics all ended together).

Windows are also tested against a second baseline, the segment value's *profile* (``detectors.profile``:
each topic's level of the last week times the shape of the segment value's total, which rests on tens of
comments an hour): a weak weekend-evening surge whose own windows the earlier weeks cannot judge. These
candidates (``baseline="profile"``) are tested among themselves, never mixed with the own-history ones (a
series takes part once per test), with the binomial tails only (the pair lets a strong single event carry any
weak neighbour), at ``PROFILE_P_FACTOR`` of the windows' threshold.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from nlp_service.anomaly.detectors.negbin import nb_deviance_residual, nb_tail
from nlp_service.anomaly.detectors.profile import profile_expectation
from nlp_service.anomaly.detectors.seasonal import SeasonalScores
from nlp_service.anomaly.detectors.windows import rolling_sum
from nlp_service.anomaly.sensitivity import Thresholds
from nlp_service.anomaly.series import SeriesKey, SeriesSet
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS

MEMBER_P = 0.01
"""A series takes part in a bucket's joint test only if its own upper-tail p-value there is at most this."""
PROFILE_P_FACTOR = 0.1
"""Joint tests against the profile pass at this fraction of the threshold: a second family of tests over the
same windows, whose topics share the profile's errors (measured: at the window threshold itself they added
four chance incidents over seeds 0-23 of the incident scenarios; evaluation/INCIDENT_ROUNDS.md, round 9)."""
PAIR_MIN_EXPECTED = 10.0
"""The pair statistic takes part only where the strongest member expected at least this many comments."""


Baseline = Literal["own", "profile"]


@dataclass(frozen=True)
class Joint:
    """Why a series fired with others: the joint p-value, its own, and the other topics that fired with it."""

    topics: tuple[str, ...]
    p_value: float
    own_p_value: float
    statistic: Literal["binomial", "pair"] = "binomial"  # the k-th smallest p-value | the two smallest
    baseline: Baseline = "own"

    def to_dict(self) -> dict[str, object]:
        return {
            "baseline": "each series' own earlier weeks"
            if self.baseline == "own"
            else "each topic's level of the last week x the shape of the segment's total (profile)",
            "test": "order statistic of the upper-tail p-values of the segment's topics (binomial tail)"
            if self.statistic == "binomial"
            else "the two smallest upper-tail p-values of the segment's topics (pair)",
            "statistic": self.statistic,
            "with_topics": list(self.topics),
            "p_value": self.p_value,
            "own_p_value": self.own_p_value,
        }


@dataclass(frozen=True)
class Candidate:
    """A series' bucket (with ``width`` > 1: the window of that many buckets ending there, its sums) that may
    take part in a joint test."""

    key: SeriesKey
    index: int
    p_value: float
    observed: float
    expected: float
    score: float
    width: int = 1
    baseline: Baseline = "own"


def candidates(
    key: SeriesKey,
    scores: SeasonalScores,
    offset: int,
    values: np.ndarray,
    scan: int,
    *,
    single: bool = True,
    windows: bool = False,
) -> list[Candidate]:
    """The buckets among the newest ``scan`` of one series (``scores`` cover buckets ``offset..``) where
    every spike guard holds and the upper-tail p-value is at most ``MEMBER_P``: single buckets with
    ``single``, and with ``windows`` the tight windows of each width ``scores.window`` tested
    (``detectors.windows``), each ending at such a bucket."""
    if key[1] == ALL_SEGMENT or key[0] == ALL_TOPICS:
        return []
    n = values.size
    lo = max(n - scan, offset)
    rel = np.arange(lo - offset, n - offset)
    out: list[Candidate] = []
    if single:
        ok = scores.guard_up[rel] & (scores.p_upper[rel] <= MEMBER_P)
        out += [
            Candidate(
                key=key,
                index=int(offset + i),
                p_value=float(scores.p_upper[i]),
                observed=float(values[offset + i]),
                expected=float(scores.expected[i]),
                score=float(abs(scores.z[i])),
            )
            for i in rel[ok]
        ]
    if windows and scores.window is not None:
        for w in scores.window.each:
            j = w.joint
            out += [
                Candidate(
                    key=key,
                    index=int(offset + i),
                    p_value=float(j.p_upper[i]),
                    observed=float(w.observed[i]),
                    expected=float(j.expected[i]),
                    score=float(abs(j.z[i])),
                    width=w.width,
                )
                for i in rel[j.p_upper[rel] <= MEMBER_P]
            ]
    return out


def profile_candidates(
    ss: SeriesSet, scan: int, widths: Sequence[int], th: Thresholds, min_count: float
) -> list[Candidate]:
    """The windows (of each of ``widths`` hours) among the newest ``scan`` buckets of each segment value's
    topic series that pass every spike guard (``th``'s, and ``min_count`` comments) and whose upper-tail
    p-value against the segment value's profile (``detectors.profile``) is at most ``MEMBER_P``."""
    by_value: dict[tuple[str, str], list[SeriesKey]] = defaultdict(list)
    for key in ss.counts:
        if key[0] != ALL_TOPICS and key[1] != ALL_SEGMENT and (ALL_TOPICS, key[1], key[2]) in ss.counts:
            by_value[(key[1], key[2])].append(key)
    first_hour = (int(ss.start.timestamp()) // 3600) % 24
    lo = max(ss.n - scan, 0)
    out: list[Candidate] = []
    for (segment, value), keys in sorted(by_value.items()):
        x = np.vstack([ss.counts[k] for k in keys]).astype(np.float64)
        total = ss.counts[(ALL_TOPICS, segment, value)].astype(np.float64)
        mu, alpha = profile_expectation(x, total, first_hour, since=max(lo - max(widths, default=1) + 1, 0))
        for w in widths:
            obs, m = rolling_sum(x, w)[:, lo:], rolling_sum(mu, w)[:, lo:]
            a = rolling_sum(alpha, w)[:, lo:] / w  # the errors are shared by a window's hours
            ok = np.isfinite(m) & (obs >= min_count) & (obs - m >= th.min_excess) & (obs >= th.min_ratio * m)
            mm, aa = np.where(ok, m, 1.0), np.where(ok, a, 0.0)
            p = nb_tail(obs, mm, aa, ok, upper=True)
            z = nb_deviance_residual(np.where(ok, obs, 1.0), mm, aa)
            for i, j in zip(*np.nonzero(ok & (p <= MEMBER_P)), strict=True):
                out.append(
                    Candidate(
                        keys[i], lo + int(j), float(p[i, j]), float(obs[i, j]), float(m[i, j]),
                        float(abs(z[i, j])), w, "profile",
                    )
                )  # fmt: skip
    return out


def joint_p_value(p_values: Sequence[float], m: int, *, pair: bool = True) -> tuple[float, int, bool]:
    """The joint p-value of the smallest ``p_values`` of ``m`` series, the ``k`` it was reached at (the
    largest such ``k``; 2 for the pair) and whether the pair statistic reached it (``pair``: it takes part);
    ``(1.0, 0, False)`` for fewer than two values."""
    p = np.sort(np.asarray(p_values, dtype=np.float64))
    if p.size < 2 or m < 2:
        return 1.0, 0, False
    k = np.arange(2, p.size + 1)
    tails = stats.binom.sf(k - 1, m, p[1:]) * m
    best = float(tails.min())
    by_pair = m * (m - 1) * float(p[0] * p[1]) * m
    if pair and by_pair < best:
        return min(by_pair, 1.0), 2, True
    return min(best, 1.0), int(k[np.flatnonzero(tails == tails.min())[-1]]), False


Test = tuple[str, str, str, int, int, int]
"""A joint test: baseline, segment, value, last bucket, width and reach (how many buckets before it windows
may end)."""


def _tests(found: Iterable[Candidate], lag: int) -> dict[Test, list[tuple[Candidate, float]]]:
    """The joint tests to run, each with its series' candidates and the p-values they take part with: per
    segment value, width and last bucket, the candidates ending there, as they are; and for windows, when
    some end up to ``lag`` buckets before, also each series' smallest over those ``lag + 1`` buckets, times
    ``lag + 1`` (so a surge whose topics all end in one hour is tested as strictly as before)."""
    by_width: dict[tuple[str, str, str, int], list[Candidate]] = defaultdict(list)
    for c in found:
        by_width[(c.baseline, c.key[1], c.key[2], c.width)].append(c)
    tests: dict[Test, list[tuple[Candidate, float]]] = {}
    for (baseline, segment, value, width), cands in by_width.items():
        reach = lag if width > 1 else 0
        cands.sort(key=lambda c: c.index)
        ends = [c.index for c in cands]
        for end in sorted(set(ends)):
            tests[(baseline, segment, value, end, width, 0)] = [
                (c, c.p_value) for c in cands[bisect_left(ends, end) : bisect_right(ends, end)]
            ]
            near = cands[bisect_left(ends, end - reach) : bisect_right(ends, end)]
            if reach == 0 or all(c.index == end for c in near):
                continue
            best: dict[SeriesKey, Candidate] = {}
            for c in near:
                if c.key not in best or c.p_value < best[c.key].p_value:
                    best[c.key] = c
            tests[(baseline, segment, value, end, width, reach)] = [
                (c, min(1.0, c.p_value * (reach + 1))) for c in best.values()
            ]
    return tests


def joint_members(
    found: Iterable[Candidate],
    ss: SeriesSet,
    th: Thresholds,
    window_p_factor: float = 1.0,
    lag: int = 0,
) -> list[tuple[Candidate, Joint]]:
    """The candidates that pass the joint test of their segment value, bucket and width, each once with its
    :class:`Joint` (the most significant test it passed; those that fired on their own too: their firing
    gains the joint test's label); windows of several buckets pass at ``th.p_threshold x window_p_factor``,
    as strict as a window alone (``detectors.windows``), and are also tested with those of their width
    ending up to ``lag`` buckets before."""
    per_value: dict[tuple[str, str], int] = defaultdict(int)
    for topic, segment, value in ss.counts:
        if topic != ALL_TOPICS and segment != ALL_SEGMENT:
            per_value[(segment, value)] += 1
    passed: dict[Candidate, Joint] = {}
    for (baseline, segment, value, _, width, _), group in sorted(_tests(found, lag).items()):
        ordered = sorted(group, key=lambda cq: (cq[1], cq[0].key))  # strongest first
        p, k, by_pair = joint_p_value(
            [q for _, q in ordered],
            per_value[(segment, value)],
            pair=baseline == "own" and ordered[0][0].expected >= PAIR_MIN_EXPECTED,
        )
        threshold = th.p_threshold * (window_p_factor if width > 1 else 1.0)
        if baseline == "profile":
            threshold *= PROFILE_P_FACTOR
        if k == 0 or p > threshold:
            continue
        members = ordered[:k]
        topics = tuple(c.key[0] for c, _ in members)
        for c, _ in members:
            if c not in passed or p < passed[c].p_value:
                passed[c] = Joint(
                    tuple(t for t in topics if t != c.key[0]),
                    p,
                    c.p_value,
                    "pair" if by_pair else "binomial",
                    c.baseline,
                )
    return sorted(
        passed.items(), key=lambda cj: (cj[0].key[1:], cj[0].index, cj[0].width, cj[0].p_value, cj[0].key)
    )
