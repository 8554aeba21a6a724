"""``emerging_topic`` alerts: a topic suggestion (``topics.suggestions``) that grows fast raises one.

Rule: a suggestion raises an alert when its size reaches ``emerging_min_size`` and its growth
``(size + 1) / (previous size + 1)`` reaches ``emerging_min_growth``. It raises none when its centroid has
cosine at least ``emerging_match_similarity`` with the centroid of an open (new or acknowledged) emerging
alert: it is that alert's cluster, seen again, and is linked to it instead (no event). Once that alert is
resolved, the cluster may raise a new one.

The alert (topic ``_emerging``, segment ``all``, direction ``up``) goes through the usual lifecycle and
webhook events (``alert.created`` here, then acknowledge/resolve); ``observed``/``baseline`` are the
window's and the previous window's sizes, ``score`` the growth, severity ``min(growth level, excess level)``
with growth >= 3/5/10 and excess comments >= 20/50/200. Its representative comments are the suggestion's;
the explanation holds the keywords, representatives, size, previous size, growth and mean sentiment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.anomaly.events import emit
from nlp_service.anomaly.explain import SEVERITIES, VOLUME_LEVELS
from nlp_service.anomaly.tables import Alert, AlertComment, Severity
from nlp_service.comments.tables import Comment
from nlp_service.config import Settings
from nlp_service.topics.tables import ALL_SEGMENT, TopicSuggestion

EMERGING_TOPIC = "_emerging"  # the topic id of emerging alerts (webhook filters can name it)
GROWTH_LEVELS = (3.0, 5.0, 10.0)
MAX_TEXT = 300  # characters of a representative's text in the explanation


def label(keywords: Sequence[str]) -> str:
    """The alert's topic label: ``Emerging: refund app, voucher, expire``."""
    return "Emerging: " + (", ".join(keywords[:3]) or "unnamed theme")


def severity(growth: float, excess: float) -> Severity:
    level = min(sum(growth >= t for t in GROWTH_LEVELS), sum(excess >= t for t in VOLUME_LEVELS))
    return SEVERITIES[level]


def open_centroids(*, db_session: Session) -> dict[str, np.ndarray]:
    """Alert id -> centroid of its cluster (newest linked suggestion) for every open emerging alert."""
    stmt = (
        select(Alert.id, TopicSuggestion.centroid)
        .join(TopicSuggestion, TopicSuggestion.alert_id == Alert.id)
        .where(Alert.kind == "emerging_topic", Alert.status.in_(("new", "acknowledged")))
        .order_by(Alert.id, TopicSuggestion.created_at.desc(), TopicSuggestion.id)
    )
    out: dict[str, np.ndarray] = {}
    for alert_id, blob in db_session.execute(stmt):
        out.setdefault(alert_id, np.frombuffer(blob, dtype=np.float32))
    return out


def fast_growing(s: TopicSuggestion, settings: Settings) -> bool:
    return s.size >= settings.emerging_min_size and s.growth >= settings.emerging_min_growth


def raise_alerts(
    *,
    db_session: Session,
    settings: Settings,
    suggestions: Sequence[TopicSuggestion],
    open_alerts: dict[str, np.ndarray],
    now: datetime,
) -> list[Alert]:
    """Link each suggestion to the open emerging alert of its cluster, or raise one if it grows fast (see
    the module docstring); returns the alerts created (their ``alert.created`` events written)."""
    created: list[Alert] = []
    ids = list(open_alerts)
    matrix = np.vstack([open_alerts[a] for a in ids]) if ids else np.zeros((0, 0), np.float32)
    for s in sorted(suggestions, key=lambda s: (-s.growth, s.id)):
        c = np.frombuffer(s.centroid, dtype=np.float32)
        if ids:
            sims = matrix @ c
            best = int(np.argmax(sims))
            if float(sims[best]) >= settings.emerging_match_similarity:
                _link(db_session, s, ids[best])
                continue
        if not fast_growing(s, settings):
            continue
        alert = _new_alert(db_session, s, settings, now)
        created.append(alert)
        ids.append(alert.id)
        matrix = np.vstack([matrix, c[None, :]]) if matrix.size else c[None, :].copy()
    db_session.flush()
    return created


def _link(db_session: Session, s: TopicSuggestion, alert_id: str) -> None:
    """``s`` is the open alert's cluster now: earlier suggestions kept for that alert are dropped."""
    for old in db_session.scalars(
        select(TopicSuggestion).where(
            TopicSuggestion.alert_id == alert_id, TopicSuggestion.status == "superseded"
        )
    ):
        db_session.delete(old)
    s.alert_id = alert_id


def _new_alert(db_session: Session, s: TopicSuggestion, settings: Settings, now: datetime) -> Alert:
    window_s = (s.window_end - s.window_start).total_seconds()
    alert = Alert(
        id=f"alr_{uuid.uuid4().hex}",
        topic_id=EMERGING_TOPIC,
        segment=ALL_SEGMENT,
        segment_value=ALL_SEGMENT,
        kind="emerging_topic",
        direction="up",
        status="new",
        severity=severity(s.growth, s.size - s.previous_size),
        bucket="day" if window_s >= 86400 else "hour",
        window_start=s.window_start,
        window_end=s.window_end,
        peak_at=s.window_start,
        baseline=float(s.previous_size),
        observed=float(s.size),
        score=float(s.growth),
        p_value=None,
        buckets_fired=1,
        explanation={},
        revision=1,
        created_at=now,
        updated_at=now,
    )
    db_session.add(alert)
    db_session.flush()
    reps = s.representatives or []
    db_session.add_all(
        AlertComment(alert_id=alert.id, row_id=r["row_id"], rank=rank, similarity=r["similarity"])
        for rank, r in enumerate(reps)
    )
    ids = [r["row_id"] for r in reps]
    by_row = {c.row_id: c for c in db_session.scalars(select(Comment).where(Comment.row_id.in_(ids)))}
    alert.explanation = explanation(
        s, [(by_row[r["row_id"]], r["similarity"]) for r in reps if r["row_id"] in by_row]
    )
    s.alert_id = alert.id
    db_session.flush()
    emit(db_session, "alert.created", alert, label(s.keywords))
    return alert


def explanation(s: TopicSuggestion, reps: Sequence[tuple[Comment, float]]) -> dict[str, Any]:
    """The alert's explanation: what the suggestion found, and a one-line summary."""
    kw = list(s.keywords)
    mood = "" if s.mean_sentiment is None else f"; mean sentiment {s.mean_sentiment:+.2f}"
    summary = (
        f"A new theme no topic covers ({', '.join(kw[:5]) or 'no keywords'}): {s.size:.0f} comments in the "
        f"window vs {s.previous_size:.0f} in the previous one (growth x{s.growth:.1f}){mood}."
    )
    return {
        "summary": summary,
        "suggestion_id": s.id,
        "keywords": kw,
        "size": s.size,
        "previous_size": s.previous_size,
        "growth": s.growth,
        "mean_sentiment": s.mean_sentiment,
        "negative_share": s.negative_share,
        "window": {"start": s.window_start.isoformat(), "end": s.window_end.isoformat()},
        "previous_window": {"start": s.previous_start.isoformat(), "end": s.window_start.isoformat()},
        "representatives": [{"id": c.id, "text": c.text[:MAX_TEXT], "similarity": sim} for c, sim in reps],
        "sample_comment_ids": [c.id for c, _ in reps],
        "severity_rule": "min(growth level, excess level); growth >= 3/5/10, excess >= 20/50/200",
    }
