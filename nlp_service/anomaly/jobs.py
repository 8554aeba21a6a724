"""Worker jobs: ``alert-detection`` scans the topic-volume series every ``detection_interval_s``;
``detection-jobs`` runs the long re-scans queued by ``POST /v1/detect`` (202)."""

from __future__ import annotations

import logging
import time

from nlp_service.anomaly import detect_jobs, flows
from nlp_service.anomaly.schemas import DetectRequest, DetectResponse
from nlp_service.anomaly.tables import DetectionJob
from nlp_service.errors import ServiceError
from nlp_service.topics.provider import active_labels
from nlp_service.worker import JobContext, job

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0


def _labels(ctx: JobContext) -> dict[str, str]:
    """The active taxonomy version's topic names (read each run: a version activated meanwhile counts)."""
    return active_labels(ctx.settings, ctx.sessionmaker)


@job("alert-detection", interval_s=lambda s: s.detection_interval_s)
def detect_alerts(ctx: JobContext) -> float | None:
    """One detection run: a read transaction, then a short one writing alerts and their webhook events.

    Database errors reach the worker, which retries soon and backs off (``Worker._run_once``)."""
    summary = flows.run_detection(sessions=ctx.sessionmaker, settings=ctx.settings, topic_labels=_labels(ctx))
    if summary.skipped:
        log.info("alert detection skipped: %s", summary.skipped)
    elif summary.alerts_created or summary.alerts_updated:
        log.info(
            "alert detection: %d series, %d alerts created, %d updated",
            summary.series_scanned,
            summary.alerts_created,
            summary.alerts_updated,
        )
    return None


@job("detection-jobs", interval_s=lambda s: s.detection_job_poll_s)
def run_detection_jobs(ctx: JobContext) -> float | None:
    """Claim one queued detection job and run it; at once again if there was one. While the stored comments
    are being re-tagged, queued jobs wait (they would scan nothing)."""
    settings = ctx.settings
    with ctx.session() as db_session:
        if flows.retag_in_progress(db_session=db_session) is not None:
            return None
        claimed = detect_jobs.claim(
            db_session=db_session,
            worker_id=ctx.worker_id,
            lease_s=settings.detection_job_lease_s,
            max_attempts=settings.detection_job_max_attempts,
        )
    if claimed is None:
        return None
    _run(ctx, claimed)
    return 0.0


def _run(ctx: JobContext, claimed: DetectionJob) -> None:
    settings = ctx.settings
    request = DetectRequest.model_validate(claimed.request)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        with ctx.session() as db_session:
            detect_jobs.report_progress(
                db_session=db_session,
                job=claimed,
                done=done,
                total=total,
                lease_s=settings.detection_job_lease_s,
            )

    result: DetectResponse | None = None
    error: str | None = None
    retry = False
    try:
        result = flows.run_detection(
            sessions=ctx.sessionmaker,
            settings=settings,
            at=request.at,
            lookback_s=request.lookback_s,
            buckets=request.buckets,
            topic_labels=_labels(ctx),
            progress=progress,
        )
    except ServiceError as exc:  # the request itself is wrong: no point retrying
        error = str(exc)
    except Exception as exc:
        log.exception("detection job %s failed", claimed.id)
        error, retry = f"{type(exc).__name__}: {exc}", True
    with ctx.session() as db_session:
        detect_jobs.finish(db_session=db_session, job=claimed, result=result, error=error, retry=retry)
