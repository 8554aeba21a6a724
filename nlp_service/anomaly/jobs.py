"""Worker job ``alert-detection``: scan the topic-volume series every ``detection_interval_s``."""

from __future__ import annotations

import logging

from nlp_service.anomaly import service
from nlp_service.worker import JobContext, job

log = logging.getLogger(__name__)


def _labels(ctx: JobContext) -> dict[str, str]:
    labels = ctx.state.get("labels")
    if labels is None:
        try:
            from nlp_service.topics.taxonomy import load_taxonomy

            labels = {t.id: t.name for t in load_taxonomy(ctx.settings.resolved_taxonomy_path()).topics}
        except Exception:  # labels are cosmetic
            labels = {}
        ctx.state["labels"] = labels
    return labels


@job("alert-detection", interval_s=lambda s: s.detection_interval_s)
def detect_alerts(ctx: JobContext) -> float | None:
    """One detection run in its own transaction (alerts and their webhook events commit together).

    Database errors reach the worker, which retries soon and backs off (``Worker._run_once``)."""
    with ctx.session() as db_session:
        summary = service.detect(db_session=db_session, settings=ctx.settings, topic_labels=_labels(ctx))
    if summary.alerts_created or summary.alerts_updated:
        log.info(
            "alert detection: %d series, %d alerts created, %d updated",
            summary.series_scanned,
            summary.alerts_created,
            summary.alerts_updated,
        )
    return None
