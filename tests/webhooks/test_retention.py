"""Retention: the ``webhook-maintenance`` job deletes old finished deliveries, their attempts and events."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select, update

from nlp_service.config import Settings
from nlp_service.timestamps import utcnow
from nlp_service.webhooks import maintenance, service
from nlp_service.webhooks.payloads import sample_alert_data
from nlp_service.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookEvent
from nlp_service.worker import load_jobs
from tests.webhooks.conftest import in_tx
from tests.webhooks.test_secrets import run_maintenance


def test_retention_job_deletes_old_finished_deliveries_only(client, settings: Settings, sessions) -> None:
    assert "webhook-maintenance" in load_jobs(["webhook-maintenance"])
    client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9999/hook"})
    now = utcnow()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    plan = {  # delivery -> (status, last change)
        "delivered-old": ("delivered", old),
        "dead-old": ("dead", old),
        "failed-old": ("failed", old),
        "pending-old": ("pending", old),  # still to be sent: never deleted, whatever its age
        "in-flight-old": ("in_flight", old),
        "delivered-recent": ("delivered", recent),
    }
    ids: dict[str, str] = {}
    for name, (status, when) in plan.items():
        [dlv] = in_tx(
            sessions,
            lambda s, name=name: service.enqueue_event(
                db_session=s, event_type="alert.created", payload=sample_alert_data(name)
            ),
        )
        ids[name] = dlv.id
        in_tx(
            sessions,
            lambda s, dlv=dlv, status=status, when=when: (
                s.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == dlv.id)
                    .values(status=status, created_at=when, updated_at=when)
                ),
                s.execute(
                    update(WebhookEvent).where(WebhookEvent.id == dlv.event_id).values(created_at=when)
                ),
                s.execute(
                    insert(WebhookAttempt),
                    [{"delivery_id": dlv.id, "number": n, "started_at": when} for n in (1, 2)],
                ),
            ),
        )
    # events whose deliveries are gone (a deleted subscription, a webhook.disabled record)
    for when in (old, recent):
        in_tx(
            sessions,
            lambda s, when=when: s.add(
                WebhookEvent(id=f"evt_orphan_{when.day}", type="x", body="{}", created_at=when)
            ),
        )

    run_maintenance(settings.model_copy(update={"webhook_retention_days": 30.0}), sessions)

    left = set(in_tx(sessions, lambda s: s.scalars(select(WebhookDelivery.id)).all()))
    assert left == {ids[n] for n in ("pending-old", "in-flight-old", "delivered-recent")}
    attempts = in_tx(
        sessions,
        lambda s: dict(
            s.execute(
                select(WebhookAttempt.delivery_id, func.count()).group_by(WebhookAttempt.delivery_id)
            ).all()
        ),
    )
    assert attempts == {dlv_id: 2 for dlv_id in left}  # the deleted ones' attempts went with them
    events = set(in_tx(sessions, lambda s: s.scalars(select(WebhookEvent.id)).all()))
    kept = set(in_tx(sessions, lambda s: s.scalars(select(WebhookDelivery.event_id)).all()))
    assert events == kept | {f"evt_orphan_{recent.day}"}

    # 0 keeps everything
    run_maintenance(settings.model_copy(update={"webhook_retention_days": 0.0}), sessions)
    assert set(in_tx(sessions, lambda s: s.scalars(select(WebhookDelivery.id)).all())) == left


def test_retention_purges_in_chunks(client, sessions) -> None:
    """More old rows than one chunk: each call deletes at most ``limit``, so transactions stay short."""
    client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9999/hook"})
    old = utcnow() - timedelta(days=40)
    for i in range(5):
        in_tx(
            sessions,
            lambda s, i=i: service.enqueue_event(
                db_session=s, event_type="alert.created", payload=sample_alert_data(str(i))
            ),
        )
    in_tx(sessions, lambda s: s.execute(update(WebhookDelivery).values(status="delivered", updated_at=old)))
    in_tx(sessions, lambda s: s.execute(update(WebhookEvent).values(created_at=old)))
    before = utcnow() - timedelta(days=30)
    counts = [
        in_tx(sessions, lambda s: maintenance.purge_finished(db_session=s, before=before, limit=2))
        for _ in range(4)
    ]
    assert counts == [(2, 2), (2, 2), (1, 1), (0, 0)]  # (deliveries, events)
    assert in_tx(sessions, lambda s: s.scalar(select(func.count()).select_from(WebhookEvent))) == 0
