"""Worker job ``alert-detection``: scans the topic-volume series every ``detection_interval_s`` (the long
re-scans queued by ``POST /v1/detect`` are durable jobs of kind ``detect``: ``anomaly.detect_jobs``)."""

from __future__ import annotations

import logging

from nlp_service.anomaly import flows
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
