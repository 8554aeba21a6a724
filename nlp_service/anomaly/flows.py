"""The detection run across transactions: the read phase (scan) in one, the short write phase in another.

Views and jobs call :func:`run_detection` instead of holding one transaction for a whole run: on SQLite the
write lock is then held only while alerts and their events are written, never while series are scanned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from nlp_service.anomaly import service
from nlp_service.anomaly.schemas import DetectResponse
from nlp_service.config import Settings
from nlp_service.db import session_scope


def run_detection(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    at: datetime | None = None,
    lookback_s: int | None = None,
    buckets: Sequence[str] | None = None,
    topic_labels: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DetectResponse:
    """Scan (read transaction), then record alerts, events and the cursor (write transaction)."""
    with session_scope(sessions) as db_session:
        found = service.scan(
            db_session=db_session,
            settings=settings,
            at=at,
            lookback_s=lookback_s,
            buckets=buckets,
            progress=progress,
        )
    with session_scope(sessions) as db_session:
        return service.record(db_session=db_session, settings=settings, scan=found, topic_labels=topic_labels)
