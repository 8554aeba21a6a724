"""Worker jobs: ``webhook-delivery`` keeps the outbox moving (see ``runner.DeliveryRunner``);
``webhook-maintenance`` clears expired previous secrets, seals plaintext (or old-key) secrets and deletes
finished deliveries, their attempts and events after ``NLP_WEBHOOK_RETENTION_DAYS``."""

from __future__ import annotations

import logging
from datetime import timedelta

from nlp_service.hardening.secretbox import load_secret_box
from nlp_service.timestamps import utcnow
from nlp_service.webhooks import maintenance
from nlp_service.webhooks.runner import DeliveryRunner
from nlp_service.worker import JobContext, job

log = logging.getLogger(__name__)
PURGE_CHUNK = 1000  # rows deleted per transaction: short write locks on SQLite


@job("webhook-delivery", interval_s=lambda s: s.webhook_poll_interval_s)
async def deliver_webhooks(ctx: JobContext) -> float | None:
    """Claim due deliveries and send them; one runner (and HTTP client) per worker, closed on stop.

    Database errors reach the worker, which retries soon and backs off (``Worker._run_once``)."""
    runner: DeliveryRunner | None = ctx.state.get("runner")
    if runner is None:
        runner = DeliveryRunner(
            sessionmaker=ctx.sessionmaker, settings=ctx.settings, worker_id=ctx.worker_id, metrics=ctx.metrics
        )
        ctx.state["runner"] = runner
        ctx.on_stop(lambda: runner.aclose(ctx.settings.worker_shutdown_grace_s))
    return await runner.tick()


@job("webhook-maintenance", interval_s=lambda s: s.webhook_maintenance_interval_s)
def maintain_webhooks(ctx: JobContext) -> None:
    """Expired previous secrets cleared, secrets sealed under the current key, old finished rows deleted."""
    box = ctx.state.get("box") or load_secret_box(ctx.settings)
    ctx.state["box"] = box
    with ctx.session() as db_session:
        cleared = maintenance.clear_expired_secrets(db_session=db_session)
        resealed = maintenance.reseal_secrets(db_session=db_session, box=box)
    purged = [0, 0]
    if ctx.settings.webhook_retention_days > 0:
        before = utcnow() - timedelta(days=ctx.settings.webhook_retention_days)
        while not ctx.stopping.is_set():
            with ctx.session() as db_session:
                counts = maintenance.purge_finished(db_session=db_session, before=before, limit=PURGE_CHUNK)
            purged = [a + b for a, b in zip(purged, counts, strict=True)]
            if max(counts) < PURGE_CHUNK:
                break
    if cleared or resealed or any(purged):
        log.info(
            "webhook maintenance: %d expired secrets cleared, %d re-sealed, %d deliveries, %d events deleted",
            cleared,
            resealed,
            *purged,
        )
