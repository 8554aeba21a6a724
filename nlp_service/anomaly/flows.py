"""The detection run, top-down: series -> detectors -> episodes -> explanation -> events.

A run has a read phase (:func:`scan`, then :func:`phrases_ahead`, no locks) and a short write phase
(:func:`record`); views and jobs call :func:`run_detection`, which runs them in separate transactions, so on
SQLite the write lock is held only while alerts and their events are written, never while series are scanned
or key phrases parsed.

**Scan.** For each bucket size, every topic and topic x segment series (``anomaly.series``) is checked by the
pure detectors (``anomaly.rules``: spikes and drops against a history-only seasonal baseline, with the
minimum-volume guard ``alert_min_volume``, and level shifts while the change point is recent) over the
completed buckets since the last run ended (its cursor; at least ``alert_rescan_buckets``, at most
``alert_max_catchup_s`` back) and those of comments stored since (late arrivals, found by a row-id
watermark). Each anomalous series-bucket is a *firing*.

**Key phrases ahead.** The merge is previewed without locks (and rolled back) and the key phrases of every
alert it would change are computed (``anomaly.phrases``: a spaCy pass, most of an explanation's time).

**Record.** Under the detector's lock (``anomaly.cursor``), firings are merged into alerts
(``anomaly.episodes``), each new or changed alert is explained (``anomaly.explain``, its key phrases looked
up by their inputs, computed only if the merge came out differently) and its ``alert.*``
event written (``anomaly.events``), the changed alerts join or open incidents and quiet incidents resolve
(``incidents.record``, with their ``incident.*`` events), and the cursor moves on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import groupby

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.anomaly import joint, rules, sensitivity
from nlp_service.anomaly.cursor import ScanCursor, lock, read_cursor
from nlp_service.anomaly.detectors import BATCH
from nlp_service.anomaly.episodes import merge_firings
from nlp_service.anomaly.events import emit
from nlp_service.anomaly.explain import explain_alert, key_phrases
from nlp_service.anomaly.phrases import PhraseCache
from nlp_service.anomaly.rules import Firing
from nlp_service.anomaly.schemas import DetectResponse
from nlp_service.anomaly.series import SeriesSet, load_series
from nlp_service.anomaly.tables import Bucket
from nlp_service.comments.tables import Comment
from nlp_service.config import Settings
from nlp_service.db import session_scope
from nlp_service.errors import InvalidInput
from nlp_service.incidents import record as incidents
from nlp_service.timestamps import BUCKET_SECONDS, floor_bucket, utcnow
from nlp_service.topics import retag
from nlp_service.topics.tables import ALL_TOPICS
from nlp_service.topics.versions import topic_sensitivities


def run_detection(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    at: datetime | None = None,
    lookback_s: int | None = None,
    buckets: Sequence[Bucket] | None = None,
    topic_labels: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DetectResponse:
    """Scan and compute key phrases (read transactions), then record alerts, events and the cursor (write
    transaction); while the stored comments are being re-tagged, nothing is scanned (:func:`skip`)."""
    with session_scope(sessions) as db_session:
        paused = retag_in_progress(db_session=db_session)
        if paused is not None:
            return skip(db_session=db_session, at=check_at(at), reason=paused)
        found = scan(
            db_session=db_session,
            settings=settings,
            at=at,
            lookback_s=lookback_s,
            buckets=buckets,
            progress=progress,
        )
    t0 = time.perf_counter()
    phrases = phrases_ahead(sessions=sessions, settings=settings, scan=found)
    found = replace(found, seconds=found.seconds + time.perf_counter() - t0)  # a run's time includes them
    with session_scope(sessions) as db_session:
        return record(
            db_session=db_session, settings=settings, scan=found, topic_labels=topic_labels, phrases=phrases
        )


def detect(
    *,
    db_session: Session,
    settings: Settings,
    at: datetime | None = None,
    lookback_s: int | None = None,
    buckets: Sequence[Bucket] | None = None,
    topic_labels: Mapping[str, str] | None = None,
) -> DetectResponse:
    """A whole run in one session: :func:`scan` then :func:`record` (:func:`run_detection` runs them in two
    transactions). Checks the newest buckets since the last run ended (see :func:`scan`)."""
    paused = retag_in_progress(db_session=db_session)
    if paused is not None:
        return skip(db_session=db_session, at=check_at(at), reason=paused)
    found = scan(db_session=db_session, settings=settings, at=at, lookback_s=lookback_s, buckets=buckets)
    return record(db_session=db_session, settings=settings, scan=found, topic_labels=topic_labels)


@dataclass
class Scan:
    """What the read phase of a run found: firings to merge, counters, and the cursor it reached."""

    at: datetime
    firings: list[Firing]
    series_scanned: int
    buckets_checked: int
    ends: dict[str, datetime]
    max_row_id: int
    seconds: float


def scan(
    *,
    db_session: Session,
    settings: Settings,
    at: datetime | None = None,
    lookback_s: int | None = None,
    buckets: Sequence[Bucket] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Scan:
    """The read phase of a run (no writes, no locks): load every topic and topic x segment series, run the
    detectors over the buckets to check, and return the firings. ``progress(done, total)`` counts series."""
    t0 = time.perf_counter()
    at = check_at(at)
    cursor = read_cursor(db_session=db_session)
    max_row_id = int(db_session.scalar(select(func.max(Comment.row_id))) or 0)
    late = _oldest_late_comment(db_session, cursor)
    plans: list[tuple[SeriesSet, int]] = []
    ends: dict[str, datetime] = {}
    for bucket in buckets or settings.alert_buckets:
        bs = BUCKET_SECONDS[bucket]
        end = ends[bucket] = floor_bucket(at, bucket)  # end of the newest completed bucket
        n_scan = _scan_buckets(settings, bucket, end, lookback_s, cursor, late)
        history = settings.alert_history_hours if bucket == "hour" else settings.alert_history_days
        start = end - timedelta(seconds=bs * (history + n_scan))
        ss = load_series(
            db_session=db_session, bucket=bucket, start=start, end=end, segments=settings.alert_segments
        ).since_first_data()
        plans.append((ss, n_scan))
    total = sum(1 for ss, _ in plans for key in ss.counts if key[0] != ALL_TOPICS)
    topic_sensitivity = topic_sensitivities(db_session=db_session)
    firings: list[Firing] = []
    scanned = checked = 0
    for ss, n_scan in plans:
        keys = [key for key in ss.counts if key[0] != ALL_TOPICS]
        candidates: list[joint.Candidate] | None = [] if any(rules.joint_tests(settings, ss.bucket)) else None
        # runs of series at one sensitivity, a batch at a time: the detectors are vectorised across a batch
        for th, run in groupby(
            keys, lambda key: sensitivity.thresholds(settings, topic_sensitivity.get(key[0]))
        ):
            group = list(run)
            for batch in (group[at : at + BATCH] for at in range(0, len(group), BATCH)):
                items = [(key, ss.counts[key]) for key in batch]
                firings.extend(
                    rules.scan_many(items, ss, settings, scan=n_scan, th=th, joint_candidates=candidates)
                )
                scanned += len(batch)
                checked += len(batch) * min(n_scan, ss.n)
                if progress is not None:
                    progress(scanned, total)
        if candidates is not None:  # the joint test: topics of one segment value up together
            joint_th = sensitivity.thresholds(settings)
            candidates.extend(rules.profile_candidates(ss, settings, scan=n_scan, th=joint_th))
            firings.extend(rules.joint_firings(candidates, ss, settings, joint_th))
    return Scan(at, firings, scanned, checked, ends, max_row_id, time.perf_counter() - t0)


def phrases_ahead(*, sessions: sessionmaker[Session], settings: Settings, scan: Scan) -> PhraseCache:
    """The key phrases of the alerts :func:`record` will explain, computed without a lock: the merge is
    previewed (no row locks, nothing written, rolled back) and each changed alert's phrases computed."""
    cache = PhraseCache()
    if not scan.firings:
        return cache
    with sessions() as db_session, db_session.no_autoflush:
        try:
            touched = merge_firings(
                db_session=db_session, settings=settings, firings=scan.firings, now=utcnow(), preview=True
            )
            for t in touched:
                if t.changed:
                    key_phrases(db_session, settings, t.alert, cache)
        finally:
            db_session.rollback()  # the preview changed open alerts in this session only
    return cache


def record(
    *,
    db_session: Session,
    settings: Settings,
    scan: Scan,
    topic_labels: Mapping[str, str] | None = None,
    phrases: PhraseCache | None = None,
) -> DetectResponse:
    """The write phase of a run, kept short: under the detector's lock, merge the firings into alerts (each
    open alert row-locked and re-read first), explain them (key phrases from ``phrases`` where computed
    ahead: :func:`phrases_ahead`), write their events, move the cursor on."""
    t0 = time.perf_counter()
    now = utcnow()
    state = lock(db_session, now)
    labels = dict(topic_labels or {})
    touched = merge_firings(db_session=db_session, settings=settings, firings=scan.firings, now=now)
    created = updated = 0
    for t in touched:
        alert = t.alert
        if not t.changed:
            continue  # a rescan of buckets already accounted for
        alert.explanation = explain_alert(
            db_session=db_session,
            settings=settings,
            alert=alert,
            topic_label=labels.get(alert.topic_id),
            phrases=phrases,
        )
        if t.created:
            created += 1
            emit(db_session, "alert.created", alert, labels.get(alert.topic_id))
        else:
            updated += 1
            alert.revision += 1
            alert.updated_at = now
            emit(db_session, "alert.updated", alert, labels.get(alert.topic_id))
    db_session.flush()
    changed = [t.alert for t in touched if t.changed]
    grouped = incidents.record(
        db_session=db_session, settings=settings, alerts=changed, at=scan.at, now=now, topic_labels=labels
    )
    out = DetectResponse(
        at=scan.at,
        series_scanned=scan.series_scanned,
        buckets_checked=scan.buckets_checked,
        firings=len(scan.firings),
        alerts_created=created,
        alerts_updated=updated,
        alert_ids=[a.id for a in changed],
        incidents_created=len(grouped.created),
        incidents_updated=len(grouped.updated),
        incidents_resolved=len(grouped.resolved),
        seconds=round(scan.seconds + time.perf_counter() - t0, 3),
    )
    cursor = ScanCursor.load(state.cursor)
    if cursor is None:  # a first run: what is stored now is not late
        cursor = ScanCursor({}, (scan.max_row_id, scan.max_row_id))
    state.cursor = cursor.advance(scan.ends, scan.max_row_id).dump()
    state.last_run_at = now
    state.last_summary = out.model_dump(mode="json")
    db_session.flush()
    return out


def retag_in_progress(*, db_session: Session) -> str | None:
    """Why detection must wait, or None: while a re-tag job is queued or running, the topic counts mix the
    old and the new taxonomy (a step that is no change in the comments)."""
    job = retag.in_progress(db_session=db_session)
    if job is None:
        return None
    return (
        f"re-tagging the stored comments to taxonomy version {job.version_id} ({job.id}, {job.status}, "
        f"{job.done}/{job.total}): detection resumes when it is done"
    )


def skip(*, db_session: Session, at: datetime, reason: str) -> DetectResponse:
    """A run that scans nothing: its summary says why and is stored as the last run's; the cursor stays, so
    the next run catches up over the buckets skipped (on the consistent, re-tagged history)."""
    now = utcnow()
    state = lock(db_session, now)
    out = DetectResponse(
        at=at,
        series_scanned=0,
        buckets_checked=0,
        firings=0,
        alerts_created=0,
        alerts_updated=0,
        alert_ids=[],
        seconds=0.0,
        skipped=reason,
    )
    state.last_run_at = now
    state.last_summary = out.model_dump(mode="json")
    db_session.flush()
    return out


def check_at(at: datetime | None, now: datetime | None = None) -> datetime:
    """The evaluation time of a run: ``at`` (default now), never in the future (empty future buckets would
    read as zeros and raise false drop alerts)."""
    now = now or utcnow()
    if at is None:
        return now
    if at > now:
        raise InvalidInput(
            f"at {at.isoformat()} is in the future (server time {now.isoformat()}); "
            "omit it to detect up to now",
            detail=[{"field": "at", "message": "must not be in the future"}],
        )
    return at.astimezone(UTC)


def _oldest_late_comment(db_session: Session, cursor: ScanCursor | None) -> datetime | None:
    """The earliest ``created_at`` among comments stored since the last runs (None on a first run)."""
    if cursor is None:
        return None
    return db_session.scalar(select(func.min(Comment.created_at)).where(Comment.row_id > cursor.row_ids[0]))


def _scan_buckets(
    settings: Settings,
    bucket: str,
    end: datetime,
    lookback_s: int | None,
    cursor: ScanCursor | None,
    late: datetime | None,
) -> int:
    """How many of the newest buckets before ``end`` to check: the rescan minimum, the asked lookback, and
    (bounded by ``alert_max_catchup_s``) every bucket since the last run's end or the oldest late arrival."""
    bs = BUCKET_SECONDS[bucket]
    scan = max(settings.alert_rescan_buckets, math.ceil((lookback_s or 0) / bs), 1)
    since = [t for t in ((cursor.scanned_until.get(bucket) if cursor else None), late) if t is not None]
    if since:
        earliest = max(
            floor_bucket(min(since), bucket), end - timedelta(seconds=settings.alert_max_catchup_s)
        )
        scan = max(scan, math.ceil((end - earliest).total_seconds() / bs))
    return scan
