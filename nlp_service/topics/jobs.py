"""Worker job: ``topic-discovery`` clusters the comments no topic claims every ``discovery_interval_s``,
refreshing the topic suggestions and raising ``emerging_topic`` alerts (``topics.flows``). It needs only
stored embeddings (no encoder) and the spaCy pipeline for keywords."""

from __future__ import annotations

import logging

from nlp_service.topics.flows import run_discovery
from nlp_service.worker import JobContext, job

log = logging.getLogger(__name__)


@job("topic-discovery", interval_s=lambda s: s.discovery_interval_s)
def discover_topics(ctx: JobContext) -> float | None:
    """One discovery run over the window ending now."""
    out = run_discovery(sessions=ctx.sessionmaker, settings=ctx.settings)
    log.info(
        "topic discovery: %d unclaimed comments, %d suggestions, %d emerging alerts (%.1f s)",
        out.unclaimed,
        len(out.suggestions),
        len(out.alerts_created),
        out.seconds,
    )
    return None
