"""Worker job ``background-jobs``: claims one durable job at a time and runs it (``jobs.runner``)."""

from __future__ import annotations

import logging

from nlp_service.jobs import service
from nlp_service.jobs.kinds import KIND_MODULES, KINDS
from nlp_service.jobs.runner import run_claimed
from nlp_service.worker import JobContext, job

log = logging.getLogger(__name__)


@job("background-jobs", interval_s=lambda s: s.job_poll_s)
def run_background_jobs(ctx: JobContext) -> float | None:
    """Claim one queued (or abandoned) job and run it; at once again if there was one. A kind whose job
    is deferred (not now) is left out of the next claims of this run, so other kinds' jobs go on."""
    settings = ctx.settings
    kinds = sorted(set(KIND_MODULES) | set(KINDS))
    while kinds:
        with ctx.session() as db_session:
            claimed = service.claim(
                db_session=db_session,
                worker_id=ctx.worker_id,
                lease_s=settings.job_lease_s,
                max_attempts=settings.job_max_attempts,
                kinds=kinds,
            )
        if claimed is None:
            return None
        outcome = run_claimed(ctx, claimed)
        log.info("job %s (%s): %s", claimed.id, claimed.kind, outcome)
        if ctx.metrics is not None:
            ctx.metrics.jobs_finished.labels(kind=claimed.kind, outcome=outcome).inc()
        if outcome != "deferred":
            return 0.0
        kinds.remove(claimed.kind)
    return None
