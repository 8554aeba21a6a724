"""Pure pieces of an alert's explanation and its severity (no database; unit-tested on their own).

- :func:`over_indexing`: which values of a segment field carry the episode (share in the window vs share in
  the baseline);
- :func:`nps_impact`: NPS of the episode's comments vs the baseline (NPS computed by ``insights``);
- :func:`shift`: a window-vs-baseline difference of a mean (negative share, emotional intensity);
- :func:`representatives`: the comments nearest the centroid of the episode's embeddings;
- :func:`severity`: derived from the detector score and the excess volume (rule below).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nlp_service.insights.schemas import Nps

SEVERITIES = ("low", "medium", "high", "critical")  # ascending, as webhook filters rank them
# Severity rule: severity = SEVERITIES[min(score_level, volume_level)], i.e. an alert is only as severe as
# the weaker of its statistical strength and its business volume. Levels (0..3) are how many thresholds
# the value reaches: score |z| (NB deviance residual; ~N(0,1) under the baseline) >= 6 / 10 / 16, and
# excess comments |observed - baseline| in the peak bucket >= 20 / 50 / 200.
SCORE_LEVELS = (6.0, 10.0, 16.0)
VOLUME_LEVELS = (20.0, 50.0, 200.0)


def _level(value: float, thresholds: tuple[float, ...]) -> int:
    return sum(value >= t for t in thresholds)


def severity(score: float, excess: float) -> str:
    """``low``/``medium``/``high``/``critical`` from the detector score and the excess comment count."""
    return SEVERITIES[min(_level(abs(score), SCORE_LEVELS), _level(abs(excess), VOLUME_LEVELS))]


def max_severity(a: str, b: str) -> str:
    """The more severe of two severities (an alert never de-escalates while its episode lasts)."""
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


@dataclass(frozen=True)
class OverIndex:
    """One segment value whose share of the topic's comments in the window exceeds its baseline share."""

    field: str
    value: str
    window_count: int
    window_share: float
    baseline_share: float
    lift: float  # window_share / baseline_share
    excess: float  # window_count - baseline_share * window total: comments above an unchanged mix
    excess_share: float  # this value's part of the positive excess of all values

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def over_indexing(
    field: str,
    window: Mapping[str, int],
    baseline: Mapping[str, int],
    *,
    min_lift: float = 1.5,
    min_excess: float = 3.0,
    min_excess_share: float = 0.2,
) -> list[OverIndex]:
    """Segment values over-represented in the window, largest excess first.

    ``window``/``baseline`` map each value of ``field`` to the topic's comment counts in the episode window
    and in the baseline period. Baseline shares are add-one smoothed over the values seen in either period
    (a value new in the window gets a small baseline share, not zero). A value over-indexes when its lift
    is at least ``min_lift``, its excess at least ``min_excess`` comments and at least ``min_excess_share``
    of the total positive excess.
    """
    values = sorted(set(window) | set(baseline))
    total_w = sum(window.values())
    if not values or total_w <= 0:
        return []
    total_b = sum(baseline.values()) + len(values)
    rows = []
    for value in values:
        w = int(window.get(value, 0))
        b_share = (baseline.get(value, 0) + 1) / total_b
        w_share = w / total_w
        rows.append((value, w, w_share, b_share, w - b_share * total_w))
    positive = sum(max(r[4], 0.0) for r in rows)
    out = [
        OverIndex(field, value, w, w_share, b_share, w_share / b_share, excess, excess / positive)
        for value, w, w_share, b_share, excess in rows
        if positive > 0
        and w_share >= min_lift * b_share
        and excess >= min_excess
        and excess / positive >= min_excess_share
    ]
    return sorted(out, key=lambda o: (-o.excess, o.value))


def nps_impact(window: Nps, baseline: Nps) -> dict[str, Any]:
    """The episode's NPS vs the baseline's: both with their counts and the difference in points.

    ``delta`` is ``None`` when either side has no NPS responses.
    """
    delta = None
    if window.nps is not None and baseline.nps is not None:
        delta = round(window.nps - baseline.nps, 2)
    return {"window": window.model_dump(), "baseline": baseline.model_dump(), "delta": delta}


def shift(window: float | None, baseline: float | None) -> dict[str, float | None]:
    """``{"window", "baseline", "delta"}`` of a mean (e.g. negative share, mean intensity)."""
    w = None if window is None else round(float(window), 4)
    b = None if baseline is None else round(float(baseline), 4)
    return {"window": w, "baseline": b, "delta": None if w is None or b is None else round(w - b, 4)}


def representatives(
    embeddings: npt.ArrayLike, k: int = 5, *, max_similarity: float = 0.98
) -> list[tuple[int, float]]:
    """Indexes (with cosine to the centroid) of the ``k`` rows nearest the centroid of ``embeddings``.

    Rows are L2-normalised here. A row nearly identical (cosine > ``max_similarity``) to one already chosen
    is skipped while other rows remain, so the picks are not copies of one comment.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or k <= 0:
        return []
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    centroid = x.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    sims = x @ centroid
    order = np.argsort(-sims, kind="stable")
    chosen: list[int] = []
    skipped: list[int] = []
    for i in order:
        if len(chosen) == k:
            break
        if chosen and float(np.max(x[chosen] @ x[i])) > max_similarity:
            skipped.append(int(i))
            continue
        chosen.append(int(i))
    chosen.extend(skipped[: k - len(chosen)])
    return [(i, round(float(sims[i]), 4)) for i in chosen]
