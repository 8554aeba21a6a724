"""Worker jobs: ``topic-retag`` re-tags the stored comments after a taxonomy activation (``topics.retag``);
``topic-discovery`` clusters the comments no topic claims every ``discovery_interval_s``, refreshing the topic
suggestions and raising ``emerging_topic`` alerts (``topics.flows``; stored embeddings and spaCy only)."""

from __future__ import annotations

import logging
import time

from nlp_service.topics import retag
from nlp_service.topics.flows import run_discovery
from nlp_service.topics.tables import RetagJob
from nlp_service.worker import JobContext, job

log = logging.getLogger(__name__)
MAX_PASSES = 5
"""Passes over the comments at most: the first, then one per round of comments stored meanwhile on another
version; a bound so that a replica stuck on an older version cannot keep the job (and the paused alert
detection) going forever."""


@job("topic-retag", interval_s=lambda s: s.retag_job_poll_s)
def run_retag_jobs(ctx: JobContext) -> float | None:
    """Claim one queued (or abandoned) re-tag job and run it; at once again if there was one."""
    settings = ctx.settings
    with ctx.session() as db_session:
        claimed = retag.claim(
            db_session=db_session,
            worker_id=ctx.worker_id,
            lease_s=settings.retag_job_lease_s,
            max_attempts=settings.retag_job_max_attempts,
        )
    if claimed is None:
        return None
    run_job(ctx, claimed)
    return 0.0


def run_job(ctx: JobContext, claimed: RetagJob) -> str:
    """Re-tag in batches, pass after pass, until no comment is on another version (at most
    :data:`MAX_PASSES`); returns how the claim ended: succeeded, failed, retry (error: back to the queue),
    released (worker stopping) or lost (superseded, or the lease passed and another worker took it)."""
    try:
        return _run(ctx, claimed)
    except retag.RetagError as exc:
        outcome, error, retry = "failed", str(exc), False
    except Exception as exc:
        log.exception("re-tag job %s failed", claimed.id)
        outcome, error, retry = "retry", f"{type(exc).__name__}: {exc}", True
    with ctx.session() as db_session:
        retag.finish(db_session=db_session, job=claimed, error=error, retry=retry)
    return outcome


def _run(ctx: JobContext, claimed: RetagJob) -> str:
    settings = ctx.settings
    t0 = time.perf_counter()
    with ctx.session() as db_session:
        model = retag.load_model(db_session=db_session, version_id=claimed.version_id)
        done = claimed.done
        total = done + retag.pending(db_session=db_session, version_id=claimed.version_id)
        retag.report_progress(db_session=db_session, job=claimed, done=done, total=total)
        upto = retag.max_row_id(db_session=db_session)
    after, passes = 0, 1
    while True:
        if ctx.stopping.is_set():
            with ctx.session() as db_session:
                retag.release(db_session=db_session, job=claimed)
            return "released"
        with ctx.session() as db_session:
            batch = retag.retag_batch(
                db_session=db_session,
                job=claimed,
                model=model,
                after=after,
                upto=upto,
                limit=settings.retag_batch_size,
                done=done,
                total=total,
                lease_s=settings.retag_job_lease_s,
            )
        if batch is None:
            log.info("re-tag job %s stopped: superseded or no longer this worker's", claimed.id)
            return "lost"
        done += batch.retagged
        if batch.retagged:
            after = batch.last_row_id
            continue
        if after == 0:
            break  # a whole pass found nothing left on another version
        with ctx.session() as db_session:
            left = retag.pending(db_session=db_session, version_id=claimed.version_id)
            upto = retag.max_row_id(db_session=db_session)
        if not left:
            break
        if passes >= MAX_PASSES:
            log.warning(
                "re-tag job %s: %d comments still on another version after %d passes (is every replica "
                "serving version %d and storing it as topics_version?)",
                claimed.id,
                left,
                passes,
                claimed.version_id,
            )
            break
        # One more pass: comments stored meanwhile by a replica still serving the older version.
        after, passes, total = 0, passes + 1, done + left
    with ctx.session() as db_session:
        finished = retag.report_progress(db_session=db_session, job=claimed, done=done, total=done)
        finished = finished and retag.finish(db_session=db_session, job=claimed)
    log.info(
        "re-tag job %s: %d comments to version %d in %.1f s",
        claimed.id,
        done,
        claimed.version_id,
        time.perf_counter() - t0,
    )
    return "succeeded" if finished else "lost"


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
