"""An alert's explanation: :func:`explain_alert` queries the window and its baseline and writes the prose;
the pure pieces below it are unit-tested on their own.

- :func:`over_indexing`: which values of a segment field carry the episode (share in the window vs share in
  the baseline);
- :func:`nps_impact`: NPS of the episode's comments vs the baseline (NPS computed by ``insights``);
- :func:`shift`: a window-vs-baseline difference of a mean (negative share, emotional intensity);
- :func:`representatives`: the comments nearest the centroid of the episode's embeddings;
- key phrases (``anomaly.phrases``): terms over-indexing in the window's comments against the baseline's;
- :func:`severity`: derived from the detector score and the excess volume (rule below).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from nlp_service.anomaly.phrases import PhraseCache
from nlp_service.anomaly.sensitivity import thresholds
from nlp_service.anomaly.tables import Alert, AlertComment, Severity
from nlp_service.comments.queries import comments_in_window, filter_conditions
from nlp_service.comments.schemas import CommentFilter
from nlp_service.comments.tables import Comment, Prediction
from nlp_service.config import Settings
from nlp_service.insights.schemas import Nps
from nlp_service.insights.service import nps as insights_nps
from nlp_service.topics.service import topic_series
from nlp_service.topics.tables import ALL_SEGMENT, ALL_TOPICS
from nlp_service.topics.versions import topic_sensitivities

SEVERITIES: tuple[Severity, ...] = (
    "low",
    "medium",
    "high",
    "critical",
)  # ascending, as webhook filters rank them
# Severity rule: severity = SEVERITIES[min(score_level, volume_level)], i.e. an alert is only as severe as
# the weaker of its statistical strength and its business volume. Levels (0..3) are how many thresholds
# the value reaches: score |z| (NB deviance residual; ~N(0,1) under the baseline) >= 6 / 10 / 16, and
# excess comments |observed - baseline| in the peak bucket >= 20 / 50 / 200.
SCORE_LEVELS = (6.0, 10.0, 16.0)
VOLUME_LEVELS = (20.0, 50.0, 200.0)
MAX_WINDOW_COMMENTS = 2_000  # comments read to pick representatives


def _level(value: float, thresholds: tuple[float, ...]) -> int:
    return sum(value >= t for t in thresholds)


def severity(score: float, excess: float) -> Severity:
    """``low``/``medium``/``high``/``critical`` from the detector score and the excess comment count."""
    return SEVERITIES[min(_level(abs(score), SCORE_LEVELS), _level(abs(excess), VOLUME_LEVELS))]


def peak_excess(alert: Alert) -> float:
    """Comments above (or below) the expectation in the alert's peak, per bucket (a window of several)."""
    return abs(alert.observed - alert.baseline) / max(
        1, int((alert.explanation or {}).get("peak_buckets") or 1)
    )


def max_severity(a: Severity, b: Severity) -> Severity:
    """The more severe of two severities (an alert never de-escalates while its episode lasts)."""
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


@dataclass(frozen=True)
class OverIndex:
    """One segment value carrying an episode: its share of the topic's comments in the window moved from its
    baseline share in the episode's direction (up: above it; down: below it)."""

    field: str
    value: str
    window_count: int
    window_share: float
    baseline_share: float
    lift: float  # window_share / baseline_share
    excess: float  # window_count - baseline_share * window total: above an unchanged mix (< 0: below)
    excess_share: float  # its part of all values' excess in the episode's direction (a fall: shortfall)

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def over_indexing(
    field: str,
    window: Mapping[str, int],
    baseline: Mapping[str, int],
    *,
    direction: str = "up",
    min_lift: float = 1.5,
    min_excess: float = 3.0,
    min_excess_share: float = 0.2,
) -> list[OverIndex]:
    """The values of ``field`` carrying the episode, the largest part first: for a rise (``direction``
    ``up``) those over-represented in the window, for a fall those under-represented (where the missing
    comments are missing from).

    ``window``/``baseline`` map each value of ``field`` to the topic's comment counts in the episode window
    and in the baseline period. Baseline shares are add-one smoothed over the values seen in either period
    (a value new in the window gets a small baseline share, not zero). A value carries the episode when its
    share moved by a factor of at least ``min_lift`` in the episode's direction, and its excess (a fall: its
    shortfall) is at least ``min_excess`` comments and at least ``min_excess_share`` of all values' in that
    direction. Counting a fall's values by their rise instead named the regions that fell least.
    """
    values = sorted(set(window) | set(baseline))
    total_w = sum(window.values())
    if not values or total_w <= 0:
        return []
    sign = 1.0 if direction == "up" else -1.0
    total_b = sum(baseline.values()) + len(values)
    rows = []
    for value in values:
        w = int(window.get(value, 0))
        b_share = (baseline.get(value, 0) + 1) / total_b
        w_share = w / total_w
        rows.append((value, w, w_share, b_share, w - b_share * total_w))
    carried = sum(max(sign * r[4], 0.0) for r in rows)

    def moved(w_share: float, b_share: float) -> bool:
        return w_share >= min_lift * b_share if sign > 0 else w_share * min_lift <= b_share

    out = [
        OverIndex(field, value, w, w_share, b_share, w_share / b_share, excess, sign * excess / carried)
        for value, w, w_share, b_share, excess in rows
        if carried > 0
        and moved(w_share, b_share)
        and sign * excess >= min_excess
        and sign * excess / carried >= min_excess_share
    ]
    return sorted(out, key=lambda o: (-sign * o.excess, o.value))


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


# -- the explanation of one alert (database reads) ------------------------------------------------------
def _alert_filter(alert: Alert, start: datetime, end: datetime) -> CommentFilter:
    """The alert's topic (and segment value, if any) over ``[start, end)``."""
    fields: dict[str, Any] = {"topic": [alert.topic_id], "start": start, "end": end}
    if alert.segment != ALL_SEGMENT:
        fields[alert.segment] = [alert.segment_value]
    return CommentFilter.model_validate(fields)


def _hour_sums(
    db_session: Session, topic_id: str, segment: str, start: datetime, end: datetime, value: str | None = None
) -> dict[str, int]:
    """Sum of hourly counts per segment value of one topic in ``[start, end)``."""
    out: dict[str, int] = defaultdict(int)
    for p in topic_series(
        db_session=db_session,
        bucket="hour",
        start=start,
        end=end,
        topic_ids=[topic_id],
        segment=segment,
        segment_value=value,
    ):
        out[p.segment_value] += p.count
    return dict(out)


def _mood(db_session: Session, filters: CommentFilter) -> tuple[int, float | None, float | None]:
    """(comments, negative share, mean emotional intensity) of the comments matching ``filters``."""
    row = db_session.execute(
        select(
            func.count().label("n"),
            func.sum(case((Prediction.sentiment_label == "negative", 1), else_=0)).label("negative"),
            func.avg(Prediction.intensity).label("intensity"),
        )
        .select_from(Comment)
        .join(Prediction, Prediction.row_id == Comment.row_id)
        .where(*filter_conditions(filters))
    ).one()
    n = int(row.n or 0)
    intensity = None if row.intensity is None else float(row.intensity)
    return n, (int(row.negative or 0) / n if n else None), intensity


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def significance(settings: Settings, alert: Alert, sensitivity: str | None = None) -> dict[str, Any]:
    """The test every alert passed: its p-value against the threshold (the same for every kind) and its
    effect size against the minimum (a shift's relative change of level; a spike's or drop's ratio and
    excess), at the topic's sensitivity (``sensitivity``: its preset, None: the global one)."""
    th = thresholds(settings, sensitivity)
    high, low = max(alert.observed, alert.baseline), min(alert.observed, alert.baseline)
    effect: dict[str, Any] = {"sensitivity": sensitivity or settings.alert_sensitivity}
    if alert.kind == "level_shift":
        effect["relative_change"] = round((high - low) / high, 4) if high else 0.0
        effect["min_relative_change"] = th.min_relative_change
    else:
        effect["ratio"], effect["min_ratio"] = (round(high / low, 4) if low else None), th.min_ratio
        effect["excess"], effect["min_excess"] = round(high - low, 4), th.min_excess
    return {"p_value": alert.p_value, "p_threshold": th.p_threshold, **effect}


def key_phrases(
    db_session: Session, settings: Settings, alert: Alert, cache: PhraseCache | None = None
) -> list[dict[str, Any]]:
    """The key phrases of the alert's window against its baseline period (looked up in ``cache`` when they
    were computed ahead: a detection run's read phase)."""
    ws = alert.window_start
    bs = ws - timedelta(days=settings.alert_baseline_days)
    found = (cache or PhraseCache()).get(
        db_session,
        settings.spacy_model,
        _alert_filter(alert, ws, alert.window_end),
        _alert_filter(alert, bs, ws),
        CommentFilter(topic=[alert.topic_id], start=bs, end=ws),  # a quiet segment's baseline: all segments
    )
    return [p.to_dict() for p in found]


def explain_alert(
    *,
    db_session: Session,
    settings: Settings,
    alert: Alert,
    topic_label: str | None = None,
    phrases: PhraseCache | None = None,
) -> dict[str, Any]:
    """Compute the alert's explanation and store its representative comments; returns the explanation.
    ``phrases``: key phrases computed ahead (:func:`key_phrases`)."""
    ws, we = alert.window_start, alert.window_end
    bs, be = ws - timedelta(days=settings.alert_baseline_days), ws
    win_f = _alert_filter(alert, ws, we)
    base_f = _alert_filter(alert, bs, be)

    # volume and share of all comments (in the alert's segment, if any)
    seg_name = alert.segment
    seg_value = None if alert.segment == ALL_SEGMENT else alert.segment_value
    w_topic = sum(_hour_sums(db_session, alert.topic_id, seg_name, ws, we, seg_value).values())
    b_topic = sum(_hour_sums(db_session, alert.topic_id, seg_name, bs, be, seg_value).values())
    w_all = sum(_hour_sums(db_session, ALL_TOPICS, seg_name, ws, we, seg_value).values())
    b_all = sum(_hour_sums(db_session, ALL_TOPICS, seg_name, bs, be, seg_value).values())
    window_hours = max((we - ws).total_seconds() / 3600, 1.0)
    baseline_hours = max((be - bs).total_seconds() / 3600, 1.0)
    volume = {
        "window_comments": w_topic,
        "baseline_comments": b_topic,
        "baseline_comments_per_window": round(b_topic * window_hours / baseline_hours, 2),
        "share_of_all": shift(w_topic / w_all if w_all else None, b_topic / b_all if b_all else None),
    }

    over: list[dict[str, Any]] = []
    for fld in settings.alert_segments:
        if fld == alert.segment:
            continue  # a segment alert is already about one value of this field
        window = _hour_sums(db_session, alert.topic_id, fld, ws, we)
        baseline = _hour_sums(db_session, alert.topic_id, fld, bs, be)
        over.extend(o.to_dict() for o in over_indexing(fld, window, baseline, direction=alert.direction))
    over.sort(key=lambda o: -abs(o["excess"]))

    nps = nps_impact(
        insights_nps(db_session=db_session, filters=win_f).overall,
        insights_nps(db_session=db_session, filters=base_f).overall,
    )
    _, w_neg, w_int = _mood(db_session, win_f)
    _, b_neg, b_int = _mood(db_session, base_f)

    reps = _store_representatives(db_session, settings, alert, win_f)
    found_phrases = key_phrases(db_session, settings, alert, phrases)
    label = topic_label or alert.topic_id
    where = "" if alert.segment == ALL_SEGMENT else f" in {alert.segment} {alert.segment_value}"
    verb = {"spike": "spiked", "drop": "dropped", "level_shift": f"shifted {alert.direction}"}[alert.kind]
    span = int((alert.explanation or {}).get("peak_buckets") or 1)  # a window of several (spikes only)
    peak = f"{span} peak {alert.bucket}s" if span > 1 else f"peak {alert.bucket}"
    summary = (
        f"{label} comments{where} {verb}: {alert.observed:.0f} in the {peak} vs "
        f"{alert.baseline:.1f} expected (score {alert.score:.1f})"
    )
    if over:
        top = over[0]
        summary += (
            f"; {top['field']} {top['value']} carries {_pct(top['excess_share'])} of the "
            f"{'excess' if alert.direction == 'up' else 'shortfall'} "
            f"({_pct(top['window_share'])} of the topic's comments vs {_pct(top['baseline_share'])} usually)"
        )
    if found_phrases:
        summary += "; key phrases: " + ", ".join(p["phrase"] for p in found_phrases[:5])
    if nps["delta"] is not None:
        summary += f"; NPS {nps['window']['nps']:+.0f} vs {nps['baseline']['nps']:+.0f} baseline"
    ex = dict(alert.explanation or {})
    ex.update(
        {
            "summary": summary + ".",
            "baseline": alert.baseline,
            "observed": alert.observed,
            "score": alert.score,
            "p_value": alert.p_value,
            "significance": significance(
                settings, alert, topic_sensitivities(db_session=db_session).get(alert.topic_id)
            ),
            "window": {"start": ws.isoformat(), "end": we.isoformat()},
            "baseline_period": {"start": bs.isoformat(), "end": be.isoformat()},
            "volume": volume,
            "over_indexing": over,
            "key_phrases": found_phrases,
            "nps": nps,
            "negative_share": shift(w_neg, b_neg),
            "intensity": shift(w_int, b_int),
            "sample_comment_ids": [r.id for r in reps],
            "severity_rule": "min(score level, excess level); score |z| >= 6/10/16, excess >= 20/50/200",
        }
    )
    return ex


def _store_representatives(
    db_session: Session, settings: Settings, alert: Alert, filters: CommentFilter
) -> list[Comment]:
    """Replace the alert's representative comments: nearest the centroid of the window's embeddings."""
    assert filters.start is not None and filters.end is not None
    rows = comments_in_window(
        db_session=db_session,
        start=filters.start,
        end=filters.end,
        filters=filters,
        limit=MAX_WINDOW_COMMENTS,
    )
    db_session.execute(delete(AlertComment).where(AlertComment.alert_id == alert.id))
    embedded = [(r.row_id, r.embedding) for r in rows if r.embedding is not None and r.embedding.size]
    if not embedded:
        return []
    picks = representatives(np.vstack([e for _, e in embedded]), settings.alert_representatives)
    db_session.add_all(
        AlertComment(alert_id=alert.id, row_id=embedded[i][0], rank=rank, similarity=sim)
        for rank, (i, sim) in enumerate(picks)
    )
    db_session.flush()
    ids = [embedded[i][0] for i, _ in picks]
    by_row = {c.row_id: c for c in db_session.scalars(select(Comment).where(Comment.row_id.in_(ids)))}
    return [by_row[r] for r in ids if r in by_row]
