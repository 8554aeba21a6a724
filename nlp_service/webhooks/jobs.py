"""Worker job ``webhook-delivery``: keeps the outbox moving (see ``delivery.DeliveryRunner``)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError, ProgrammingError

from nlp_service.webhooks.delivery import DeliveryRunner
from nlp_service.worker import JobContext, job

log = logging.getLogger(__name__)
MISSING_TABLES_RETRY_S = 30.0


@job("webhook-delivery", interval_s=lambda s: s.webhook_poll_interval_s)
async def deliver_webhooks(ctx: JobContext) -> float | None:
    """Claim due deliveries and send them; one runner (and HTTP client) per worker, closed on stop."""
    runner: DeliveryRunner | None = ctx.state.get("runner")
    if runner is None:
        runner = DeliveryRunner(sessionmaker=ctx.sessionmaker, settings=ctx.settings, worker_id=ctx.worker_id)
        ctx.state["runner"] = runner
        ctx.on_stop(lambda: runner.aclose(ctx.settings.worker_shutdown_grace_s))
    try:
        return await runner.tick()
    except (OperationalError, ProgrammingError) as exc:
        if not ctx.state.get("db_warned"):  # e.g. tables missing: `nlp-service db upgrade`
            log.warning("webhook delivery paused, database not usable: %s", str(exc).splitlines()[0])
            ctx.state["db_warned"] = True
        return MISSING_TABLES_RETRY_S
