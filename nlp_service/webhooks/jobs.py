"""Worker job ``webhook-delivery``: keeps the outbox moving (see ``delivery.DeliveryRunner``)."""

from __future__ import annotations

from nlp_service.webhooks.delivery import DeliveryRunner
from nlp_service.worker import JobContext, job


@job("webhook-delivery", interval_s=lambda s: s.webhook_poll_interval_s)
async def deliver_webhooks(ctx: JobContext) -> float | None:
    """Claim due deliveries and send them; one runner (and HTTP client) per worker, closed on stop.

    Database errors reach the worker, which retries soon and backs off (``Worker._run_once``)."""
    runner: DeliveryRunner | None = ctx.state.get("runner")
    if runner is None:
        runner = DeliveryRunner(sessionmaker=ctx.sessionmaker, settings=ctx.settings, worker_id=ctx.worker_id)
        ctx.state["runner"] = runner
        ctx.on_stop(lambda: runner.aclose(ctx.settings.worker_shutdown_grace_s))
    return await runner.tick()
