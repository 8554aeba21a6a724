"""Subscriptions API, secrets shown once, filters and ``enqueue_event``, SSRF refusals."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.hardening.secretbox import SecretBox
from nlp_service.timestamps import utcnow
from nlp_service.webhooks import deliveries, service
from nlp_service.webhooks.payloads import WebhookDisabledData, sample_alert_data
from nlp_service.webhooks.safety import TargetPolicy, UnsafeTarget, resolve_target
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.tables import WebhookSubscription
from tests.webhooks.conftest import create_subscription, in_tx
from tests.webhooks.receiver import LocalReceiver

URL = "http://127.0.0.1:9999/hook"  # loopback is allowed in these settings; nothing is sent


def create(client: TestClient, **body) -> dict:
    resp = client.post("/v1/webhooks", json={"url": URL, **body})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_crud_and_secret_shown_once(client: TestClient, sessions, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    created = create(
        client,
        description="ops",
        event_types=["alert.created", "alert.resolved"],
        filters={"topics": ["billing"], "min_severity": "high"},
    )
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["id"].startswith("wh_")
    assert created["filters"] == {"topics": ["billing"], "segments": None, "min_severity": "high"}
    webhook_id = created["id"]

    listed = client.get("/v1/webhooks")
    one = client.get(f"/v1/webhooks/{webhook_id}")
    assert listed.status_code == one.status_code == 200
    assert [w["id"] for w in listed.json()["items"]] == [webhook_id]
    for text in (listed.text, one.text):
        assert secret not in text and "secret" not in text

    patched = client.patch(f"/v1/webhooks/{webhook_id}", json={"description": "ops team", "enabled": False})
    assert patched.status_code == 200
    assert patched.json()["description"] == "ops team" and patched.json()["enabled"] is False
    assert patched.json()["disabled_reason"] == "disabled by user"
    assert client.get("/v1/webhooks", params={"enabled": True}).json()["items"] == []
    again = client.patch(f"/v1/webhooks/{webhook_id}", json={"enabled": True}).json()
    assert again["enabled"] is True and again["disabled_reason"] is None

    rotated = client.post(f"/v1/webhooks/{webhook_id}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    assert rotated["previous_secret_expires_at"]
    sub = in_tx(sessions, lambda s: s.get(WebhookSubscription, webhook_id))
    box = client.app.state.nlp.require_secret_box()  # stored sealed (tests/webhooks/test_secrets.py)
    assert box.open(sub.secret) == rotated["secret"] and box.open(sub.previous_secret) == secret
    assert secret not in repr(sub)

    assert client.delete(f"/v1/webhooks/{webhook_id}").status_code == 204
    assert client.get(f"/v1/webhooks/{webhook_id}").status_code == 404
    assert client.delete(f"/v1/webhooks/{webhook_id}").json()["type"] == "not_found"
    for record in caplog.records:  # the secrets never reach the logs
        assert secret not in record.getMessage() and rotated["secret"] not in record.getMessage()


def test_validation(client: TestClient) -> None:
    assert client.post("/v1/webhooks", json={"url": URL, "event_types": []}).status_code == 422
    assert (
        client.post("/v1/webhooks", json={"url": URL, "event_types": ["alert.exploded"]}).status_code == 422
    )
    assert client.post("/v1/webhooks", json={"url": URL, "secret": "mine"}).status_code == 422
    assert (
        client.post("/v1/webhooks", json={"url": URL, "filters": {"min_severity": "huge"}}).status_code == 422
    )
    assert client.post("/v1/webhooks", json={"url": "ftp://example.com/x"}).status_code == 422
    resp = client.post("/v1/webhooks", json={"url": "http://user:pw@127.0.0.1/x"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == "url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://0.0.0.0/",
        "http://192.168.1.10/",
        "http://100.64.0.1/",
        "file:///etc/passwd",
    ],
)
def test_ssrf_targets_refused_without_loopback(client: TestClient, url: str) -> None:
    strict = TargetPolicy()
    with pytest.raises(UnsafeTarget):
        resolve_target(url, strict)
    client.app.state.nlp.settings = client.app.state.nlp.settings.model_copy(
        update={"webhook_allow_loopback": False}
    )
    resp = client.post("/v1/webhooks", json={"url": url})
    assert resp.status_code == 422, resp.text
    created = client.post("/v1/webhooks", json={"url": "http://93.184.215.14/hook"})
    assert created.status_code == 201  # a public address literal is accepted (and never contacted here)
    # ... and an update to a refused target is refused too
    patched = client.patch(f"/v1/webhooks/{created.json()['id']}", json={"url": url})
    assert patched.status_code == 422


def test_allow_flags() -> None:
    assert resolve_target("http://localhost/x", TargetPolicy(allow_loopback=True)).address.is_loopback
    assert resolve_target("http://10.1.2.3/x", TargetPolicy(allow_private=True))
    with pytest.raises(UnsafeTarget):
        resolve_target("http://10.1.2.3/x", TargetPolicy(allow_loopback=True))
    with pytest.raises(UnsafeTarget):  # multicast never
        resolve_target("http://224.0.0.1/x", TargetPolicy(allow_private=True, allow_loopback=True))


def test_send_time_check_refuses_without_sending(sessions, box, receiver: LocalReceiver, drain) -> None:
    """A target that became unsafe (settings or DNS changed) is refused at send time: no request leaves."""
    create_subscription(sessions, box, CreateWebhookRequest(url=receiver.url))
    [dlv] = in_tx(
        sessions,
        lambda s: service.enqueue_event(
            db_session=s, event_type="alert.created", payload=sample_alert_data("a")
        ),
    )
    drain(webhook_allow_loopback=False)
    assert receiver.requests == []
    item = in_tx(sessions, lambda s: deliveries.get_delivery(db_session=s, delivery_id=dlv.id))
    assert item.status == "dead" and "loopback" in item.last_error


def _sub(sessions: sessionmaker[Session], **filters) -> str:
    request = CreateWebhookRequest(
        url=URL, event_types=["alert.created", "webhook.disabled"], filters=filters
    )
    box = SecretBox([SecretBox.generate_key()])  # nothing is sent in these tests
    sub, _ = create_subscription(sessions, box, request)
    return sub.id


def test_enqueue_event_applies_filters(sessions) -> None:
    everything = _sub(sessions)
    billing = _sub(sessions, topics=["billing"])
    eu_high = _sub(sessions, segments=["eu"], min_severity="high")

    disabled = WebhookDisabledData(webhook_id="wh_x", url="http://x/", reason="gone", disabled_at=utcnow())

    def targets(event_type="alert.created", **kw) -> set[str]:
        payload = disabled if event_type == "webhook.disabled" else sample_alert_data("a")
        out = in_tx(
            sessions,
            lambda s: service.enqueue_event(db_session=s, event_type=event_type, payload=payload, **kw),
        )
        return {d.subscription_id for d in out}

    assert targets(topic_id="billing", segment="eu", severity="critical") == {everything, billing, eu_high}
    assert targets(topic_id="shipping", segment="eu", severity="medium") == {everything}
    assert targets(topic_id="billing", segment="us", severity="high") == {everything, billing}
    assert targets(topic_id=None, segment="eu", severity="high") == {everything, eu_high}
    assert targets("alert.resolved", topic_id="billing") == set()  # nobody subscribed to it
    # filters apply to alerts only
    assert targets("webhook.disabled") == {everything, billing, eu_high}
    with pytest.raises(ValueError):
        targets("alert.exploded")


def test_enqueue_event_is_part_of_the_callers_transaction(sessions) -> None:
    _sub(sessions)

    def enqueue_then_fail(s: Session) -> None:
        service.enqueue_event(db_session=s, event_type="alert.created", payload=sample_alert_data("a"))
        raise RuntimeError("the alert change failed")

    with pytest.raises(RuntimeError):
        in_tx(sessions, enqueue_then_fail)
    webhook_id = in_tx(sessions, lambda s: service.get_all(db_session=s)[0].id)
    assert in_tx(sessions, lambda s: deliveries.get_deliveries(db_session=s, webhook_id=webhook_id)) == []


def test_ping(client: TestClient, receiver: LocalReceiver, drain) -> None:
    created = client.post("/v1/webhooks", json={"url": receiver.url}).json()
    resp = client.post(f"/v1/webhooks/{created['id']}/ping")
    assert resp.status_code == 202
    drain()
    [req] = receiver.requests
    assert req.msg_id == resp.json()["event_id"]
    assert b'"type":"webhook.ping"' in req.body
    assert client.post("/v1/webhooks/wh_missing/ping").status_code == 404


def test_recover_validation(client: TestClient) -> None:
    created = create(client)
    resp = client.post(f"/v1/webhooks/{created['id']}/recover", json={"since": "2026-01-01T00:00:00"})
    assert resp.status_code == 200 and resp.json() == {"requeued": 0}
    assert client.post(f"/v1/webhooks/{created['id']}/recover", json={}).status_code == 422
    client.patch(f"/v1/webhooks/{created['id']}", json={"enabled": False})
    resp = client.post(f"/v1/webhooks/{created['id']}/recover", json={"since": "2026-01-01T00:00:00Z"})
    assert resp.status_code == 409
