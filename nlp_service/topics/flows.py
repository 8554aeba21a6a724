"""The discovery run, top-down: unclaimed comments -> clusters -> suggestions -> emerging-topic alerts.

A run has a read phase (``suggestions.scan``: selection, clustering, keywords; no locks, no writes) and a
short write phase under the ``topic-discovery`` lock (a row of ``alert_detector_state``): the open emerging
alerts' centroids are read, the new suggestions replace the previous run's open ones, each is linked to the
open alert of its cluster or raises an ``emerging_topic`` alert if it grows fast (``anomaly.emerging``), and
the run's summary is kept on the lock row. Two runs never interleave their writes, so one cluster raises one
alert.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from nlp_service.anomaly import emerging
from nlp_service.anomaly.cursor import lock
from nlp_service.anomaly.flows import check_at
from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.timestamps import utcnow
from nlp_service.topics import suggestions
from nlp_service.topics.suggestion_schemas import RefreshResponse

LOCK = "topic-discovery"


def run_discovery(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    at: datetime | None = None,
    window_s: int | None = None,
) -> RefreshResponse:
    """Scan (read transaction), then store suggestions and raise alerts (write transaction)."""
    at = check_at(at)
    with session_scope(sessions) as db_session:
        found = suggestions.scan(db_session=db_session, settings=settings, at=at, window_s=window_s)
    with session_scope(sessions) as db_session:
        return record(db_session=db_session, settings=settings, scan=found)


def record(*, db_session: Session, settings: Settings, scan: suggestions.Scan) -> RefreshResponse:
    """The write phase of a run (see the module docstring)."""
    now = utcnow()
    state = lock(db_session, now, name=LOCK)
    open_alerts = emerging.open_centroids(db_session=db_session)
    rows = suggestions.replace_open(
        db_session=db_session, scan=scan, now=now, keep_alert_ids=list(open_alerts)
    )
    created = emerging.raise_alerts(
        db_session=db_session, settings=settings, suggestions=rows, open_alerts=open_alerts, now=now
    )
    out = RefreshResponse(
        at=scan.at,
        window_start=scan.window_start,
        previous_window_start=scan.previous_start,
        unclaimed=scan.unclaimed,
        sampled=scan.sampled,
        previous_unclaimed=scan.previous_unclaimed,
        clusters=scan.k,
        alerts_created=[a.id for a in created],
        suggestions=suggestions.to_out(db_session=db_session, rows=rows),
        seconds=scan.seconds,
    )
    state.last_run_at = now
    state.last_summary = out.model_dump(mode="json", exclude={"suggestions"}) | {"suggestions": len(rows)}
    db_session.flush()
    return out
