"""Delivery against a real local HTTP receiver: signatures, retries, dead + recover, 410, redirects."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from nlp_service.hardening.secretbox import SecretBox
from nlp_service.webhooks import deliveries, service
from nlp_service.webhooks.payloads import sample_alert_data
from nlp_service.webhooks.retry import RetryPolicy
from nlp_service.webhooks.runner import DeliveryRunner
from nlp_service.webhooks.safety import TargetPolicy
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.sender import Sender, SendResult
from nlp_service.webhooks.tables import WebhookDelivery, WebhookEvent, WebhookSubscription
from tests.webhooks.conftest import create_subscription, in_tx
from tests.webhooks.receiver import LocalReceiver, Reply

LOOPBACK = TargetPolicy(allow_loopback=True)
ALERT = sample_alert_data("al_1", topic_id="billing")


def subscribe(sessions: sessionmaker[Session], box: SecretBox, url: str, **kwargs) -> tuple[str, str]:
    sub, secret = create_subscription(sessions, box, CreateWebhookRequest(url=url, **kwargs), LOOPBACK)
    return sub.id, secret


def enqueue(sessions: sessionmaker[Session], event_type: str = "alert.created", **kw) -> list[str]:
    deliveries = in_tx(
        sessions,
        lambda s: service.enqueue_event(
            db_session=s, event_type=event_type, payload=ALERT, topic_id="billing", severity="high", **kw
        ),
    )
    return [d.id for d in deliveries]


def delivery(sessions: sessionmaker[Session], delivery_id: str) -> WebhookDelivery:
    return in_tx(sessions, lambda s: s.get(WebhookDelivery, delivery_id))


def test_signed_delivery_verifies_with_reference_package(
    sessions, box, receiver: LocalReceiver, drain
) -> None:
    _, secret = subscribe(sessions, box, receiver.url)
    [dlv] = enqueue(sessions)
    drain()
    [req] = receiver.requests
    payload = Webhook(secret).verify(req.body, req.headers)
    assert payload["type"] == "alert.created" and payload["version"] == "2026-11-01"
    assert payload["id"] == req.msg_id and payload["data"]["alert"]["explanation"]["summary"]
    assert req.headers["content-type"] == "application/json"
    assert delivery(sessions, dlv).status == "delivered"


def test_500_500_200_is_delivered_on_attempt_3(sessions, box, receiver: LocalReceiver, drain, client) -> None:
    webhook_id, secret = subscribe(sessions, box, receiver.url)
    receiver.script([Reply(500, body=b"boom"), Reply(500)])
    [dlv] = enqueue(sessions)
    drain()
    assert len(receiver.requests) == 3
    assert len(receiver.unique_ids()) == 1  # the same webhook-id on every retry
    for req in receiver.requests:
        Webhook(secret).verify(req.body, req.headers)
    items = client.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["items"]
    [item] = items
    assert item["id"] == dlv and item["status"] == "delivered" and item["attempts"] == 3
    log = item["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 500, 200]
    assert [a["success"] for a in log] == [False, False, True]
    assert log[0]["response_snippet"] == "boom" and log[0]["error"] == "HTTP 500"
    assert all(a["latency_ms"] >= 0 for a in log)


def test_receiver_down_then_dead_then_recover(sessions, box, receiver: LocalReceiver, drain, client) -> None:
    webhook_id, secret = subscribe(sessions, box, receiver.url)
    port = receiver.port
    receiver.stop()  # down for the whole compressed schedule
    [dlv] = enqueue(sessions)
    drain()
    dead = delivery(sessions, dlv)
    assert dead.status == "dead" and dead.attempts == 3 and dead.last_status_code is None
    assert client.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"status": "dead"}).json()["items"]

    with LocalReceiver(port=port) as back:  # the receiver is back
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        resp = client.post(f"/v1/webhooks/{webhook_id}/recover", json={"since": since})
        assert resp.status_code == 200 and resp.json() == {"requeued": 1}
        drain()
        assert len(back.requests) == 1
        Webhook(secret).verify(back.requests[0].body, back.requests[0].headers)
        assert back.requests[0].msg_id == json.loads(back.requests[0].body)["id"]
    recovered = delivery(sessions, dlv)
    assert recovered.status == "delivered" and recovered.attempts == 4


def test_410_disables_the_subscription(sessions, box, receiver: LocalReceiver, drain, client) -> None:
    webhook_id, _ = subscribe(sessions, box, receiver.url)
    other_id, _ = subscribe(sessions, box, receiver.url + "?ops", event_types=["webhook.disabled"])
    receiver.script([Reply(410)])
    [dlv, *_] = enqueue(sessions)
    drain()
    assert delivery(sessions, dlv).status == "failed"
    sub = client.get(f"/v1/webhooks/{webhook_id}").json()
    assert sub["enabled"] is False and "410" in sub["disabled_reason"]
    # a webhook.disabled record is kept and sent to subscribers of it
    events = in_tx(
        sessions,
        lambda s: s.scalars(select(WebhookEvent).where(WebhookEvent.type == "webhook.disabled")).all(),
    )
    assert len(events) == 1 and json.loads(events[0].body)["data"]["webhook_id"] == webhook_id
    assert any(json.loads(r.body)["type"] == "webhook.disabled" for r in receiver.requests)
    # disabled: new events are not queued for it; ping and recover refuse
    assert enqueue(sessions) == []
    assert client.post(f"/v1/webhooks/{webhook_id}/ping").status_code == 409
    assert other_id


def test_301_is_a_failure_and_not_followed(sessions, box, receiver: LocalReceiver, drain) -> None:
    with LocalReceiver() as elsewhere:
        subscribe(sessions, box, receiver.url)
        receiver.default = Reply(301, headers={"location": elsewhere.url})
        [dlv] = enqueue(sessions)
        drain()
        assert elsewhere.requests == []
    assert len(receiver.requests) == 3
    result = delivery(sessions, dlv)
    assert result.status == "dead" and result.last_status_code == 301
    assert "not followed" in (result.last_error or "")


def test_retry_after_is_honoured(sessions, box, receiver: LocalReceiver, drain) -> None:
    subscribe(sessions, box, receiver.url)
    receiver.script([Reply(429, headers={"retry-after": "1"})])
    [dlv] = enqueue(sessions)
    drain()
    first, second = receiver.requests
    assert second.at - first.at >= 0.9  # the schedule said 0.05 s
    assert delivery(sessions, dlv).status == "delivered"


def test_failing_too_long_disables(sessions, box, receiver: LocalReceiver, drain) -> None:
    webhook_id, _ = subscribe(sessions, box, receiver.url)
    receiver.default = Reply(500)

    def age(s: Session) -> None:
        s.get(WebhookSubscription, webhook_id).failing_since = datetime.now(UTC) - timedelta(days=6)

    in_tx(sessions, age)
    [dlv] = enqueue(sessions)
    drain()
    assert len(receiver.requests) == 1
    sub = in_tx(sessions, lambda s: s.get(WebhookSubscription, webhook_id))
    assert not sub.enabled and "failing continuously" in sub.disabled_reason
    assert delivery(sessions, dlv).status == "failed"


def test_success_clears_failing_since(sessions, box, receiver: LocalReceiver, drain) -> None:
    webhook_id, _ = subscribe(sessions, box, receiver.url)
    receiver.script([Reply(503)])
    enqueue(sessions)
    drain()
    sub = in_tx(sessions, lambda s: s.get(WebhookSubscription, webhook_id))
    assert sub.failing_since is None and sub.enabled


def test_rotation_sends_both_signatures(sessions, box, receiver: LocalReceiver, drain, client) -> None:
    webhook_id, old = subscribe(sessions, box, receiver.url)
    new = client.post(f"/v1/webhooks/{webhook_id}/rotate-secret").json()["secret"]
    enqueue(sessions)
    drain()
    [req] = receiver.requests
    assert len(req.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(req.body, req.headers)


def test_manual_retry_resends_with_same_id(sessions, box, receiver: LocalReceiver, drain, client) -> None:
    subscribe(sessions, box, receiver.url)
    [dlv] = enqueue(sessions)
    drain()
    resp = client.post(f"/v1/deliveries/{dlv}/retry")
    assert resp.status_code == 200 and resp.json()["status"] == "pending"
    drain()
    assert len(receiver.requests) == 2 and len(receiver.unique_ids()) == 1
    assert client.post("/v1/deliveries/dlv_nope/retry").status_code == 404


def test_retry_policy_schedule_and_jitter() -> None:
    policy = RetryPolicy(schedule_s=(0, 5, 300), jitter=0.1, max_retry_after_s=60)
    assert policy.next_delay(0) == 0
    assert 4.5 <= policy.next_delay(1) <= 5.5
    assert policy.next_delay(3) is None
    assert 60 <= policy.next_delay(1, retry_after_s=3600) <= 60  # capped Retry-After
    assert RetryPolicy().schedule_s == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


class CrashingSender(Sender):
    """A send that blows up inside the worker (a bug, an exhausted resource), not an HTTP failure."""

    async def send(self, **kwargs) -> SendResult:  # type: ignore[no-untyped-def, override]
        raise RuntimeError("sender bug")


def test_a_crashing_send_is_a_failed_attempt_not_an_endless_loop(settings, sessions, box) -> None:
    subscribe(sessions, box, "http://127.0.0.1:9999/hook")
    [dlv] = enqueue(sessions)

    async def go() -> None:
        runner = DeliveryRunner(
            sessionmaker=sessions, settings=settings, worker_id="w", sender=CrashingSender()
        )
        try:
            await runner.drain(timeout_s=8)
        finally:
            await runner.aclose(grace_s=0.5)

    asyncio.run(go())
    failed = in_tx(sessions, lambda s: deliveries.get_delivery(db_session=s, delivery_id=dlv))
    assert failed.status == "dead" and failed.attempts == 3
    assert [a.number for a in failed.attempt_log] == [1, 2, 3]
    assert all("RuntimeError: sender bug" in (a.error or "") for a in failed.attempt_log)
