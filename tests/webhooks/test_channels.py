"""Notification formats delivered to real local receivers, each retried after a failure: Slack blocks and a
Teams Adaptive Card over HTTP (the local webhook receiver), e-mail over SMTP (aiosmtpd). Same outbox, retries
and SSRF rules as the standard format."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.errors import install_error_handlers
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.state import AppState
from nlp_service.webhooks import service
from nlp_service.webhooks.formats import message_of
from nlp_service.webhooks.mailer import Mailer, SmtpConfig
from nlp_service.webhooks.payloads import sample_alert_data
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.tables import WebhookDelivery
from nlp_service.webhooks.views import router
from tests.webhooks.conftest import create_subscription, in_tx
from tests.webhooks.receiver import LocalReceiver, Reply
from tests.webhooks.smtp_receiver import LocalSmtp

ALERT = sample_alert_data(
    "alr_1",
    topic_id="pricing_promotions",
    topic_label="Pricing & promotions",
    segment="eu-west",
    segment_field="region",
    segment_value="eu-west",
    owner="ana@example.com",
    explanation={
        "summary": "Pricing complaints spiked in region eu-west: 60 vs 11.6 expected.",
        "sample_comment_ids": [],
        "severity_rule": "min(score level, excess level)",
        "observed": 60.0,
        "baseline": 11.6,
        "key_phrases": ["sales tax", "ohio", {"phrase": "overcharged"}],
    },
).model_dump(mode="json")
PUBLIC = "https://nlp.example.com"


def enqueue(sessions: sessionmaker[Session]) -> str:
    [delivery] = in_tx(
        sessions,
        lambda s: service.enqueue_event(
            db_session=s, event_type="alert.created", payload=ALERT, topic_id="pricing_promotions"
        ),
    )
    return delivery.id


def delivery(sessions: sessionmaker[Session], delivery_id: str) -> WebhookDelivery:
    return in_tx(sessions, lambda s: s.get(WebhookDelivery, delivery_id))


def test_slack_blocks_delivered_after_a_failure(
    sessions, box: SecretBox, receiver: LocalReceiver, drain
) -> None:
    create_subscription(sessions, box, CreateWebhookRequest(url=receiver.url, format="slack"))
    receiver.script([Reply(500)])
    dlv = enqueue(sessions)
    drain(public_url=PUBLIC)
    first, second = receiver.requests
    assert first.body == second.body and first.msg_id == second.msg_id  # one message, retried
    msg = json.loads(second.body)
    assert "Pricing & promotions" in msg["text"] and "[high]" in msg["text"]
    blocks = {b["type"]: b for b in msg["blocks"]}
    assert "Pricing & promotions" in blocks["header"]["text"]["text"]
    sections = [b for b in msg["blocks"] if b["type"] == "section"]
    assert "60 vs 11.6 expected" in sections[0]["text"]["text"]
    fields = [f["text"] for b in msg["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
    assert "*Observed vs expected*\n60 vs 11.6" in fields and "*Segment*\nregion = eu-west" in fields
    assert "*Owner*\nana@example.com" in fields
    assert "sales tax, ohio, overcharged" in blocks["context"]["elements"][0]["text"]
    assert blocks["actions"]["elements"][0]["url"] == f"{PUBLIC}/v1/alerts/alr_1"
    done = delivery(sessions, dlv)
    assert done.status == "delivered" and done.attempts == 2


def test_teams_adaptive_card_delivered_after_a_failure(
    sessions, box: SecretBox, receiver: LocalReceiver, drain
) -> None:
    create_subscription(sessions, box, CreateWebhookRequest(url=receiver.url, format="teams"))
    receiver.script([Reply(503)])
    dlv = enqueue(sessions)
    drain()
    assert len(receiver.requests) == 2
    msg = json.loads(receiver.requests[1].body)
    assert msg["type"] == "message"
    [attachment] = msg["attachments"]
    card = attachment["content"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert (
        card["body"][0]["text"] == "New alert: Pricing & promotions"
        and card["body"][0]["color"] == "Attention"
    )
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert facts["Observed vs expected"] == "60 vs 11.6" and facts["Severity"] == "high"
    assert any("overcharged" in b.get("text", "") for b in card["body"])
    assert "actions" not in card  # no public_url configured: no link
    assert delivery(sessions, dlv).status == "delivered"


def test_email_delivered_over_smtp_after_a_refusal(sessions, box: SecretBox, drain) -> None:
    request = CreateWebhookRequest(format="email", recipients=["ops@example.com", "lead@example.com"])
    sub, _ = create_subscription(sessions, box, request)
    assert sub.url == "mailto:ops@example.com,lead@example.com"
    with LocalSmtp(fail_next=1) as smtp:
        dlv = enqueue(sessions)
        drain(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none", smtp_from="nlp@example.com")
        assert smtp.handler.attempts == 2
        [(rcpt, mail)] = smtp.messages
    assert rcpt == ["ops@example.com", "lead@example.com"]
    assert mail["Subject"] == "[high] New alert: Pricing & promotions" and mail["From"] == "nlp@example.com"
    assert mail["X-Webhook-Id"].startswith("evt_")
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "60 vs 11.6 expected" in text and "Observed vs expected: 60 vs 11.6" in text
    assert "Key phrases: sales tax, ohio, overcharged" in text
    assert "Pricing &amp; promotions" in html  # escaped
    done = in_tx(sessions, lambda s: s.get(WebhookDelivery, dlv))
    assert done.status == "delivered" and done.attempts == 2 and done.last_status_code == 250


def test_email_without_an_smtp_server_stays_queued_for_retries(sessions, box: SecretBox, drain) -> None:
    create_subscription(sessions, box, CreateWebhookRequest(format="email", recipients=["ops@example.com"]))
    dlv = enqueue(sessions)
    drain()
    dead = delivery(sessions, dlv)
    assert dead.status == "dead" and "NLP_SMTP_HOST" in (dead.last_error or "")


@pytest.fixture(scope="module")
def localhost_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), used as its own CA."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_and_login(localhost_cert: tuple[Path, Path]) -> None:
    cert, key = localhost_cert
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))
    event = {"id": "evt_9", "type": "alert.created", "data": ALERT}
    with LocalSmtp(tls=server_tls, login=("nlp", "s3cret")) as smtp:

        def send(password: str, tls: ssl.SSLContext | None = trusted) -> object:
            config = SmtpConfig(
                "127.0.0.1", smtp.port, "nlp@example.com", "starttls", "nlp", password, timeout_s=5
            )
            mailer = Mailer(config, tls=tls)
            try:
                return asyncio.run(mailer.send(message=message_of(event), recipients=["ops@example.com"]))
            finally:
                mailer.close()

        ok = send("s3cret")
        wrong = send("nope")
        untrusted = send("s3cret", tls=None)  # the system CAs do not know the test certificate
        assert smtp.logins == [("nlp", "s3cret"), ("nlp", "nope")]
        assert len(smtp.messages) == 1
    assert ok.success and ok.status_code == 250  # type: ignore[attr-defined]
    assert not wrong.success and "535" in (wrong.error or "")  # type: ignore[attr-defined]
    assert not untrusted.success and "SSL" in (untrusted.error or "")  # type: ignore[attr-defined]


@pytest.fixture
def smtp_client(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)
    cfg = settings.model_copy(update={"smtp_host": "127.0.0.1"})
    app.state.nlp = AppState(settings=cfg, db=sessions)
    app.include_router(router, prefix="/v1")
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"format": "email"}, "needs recipients"),
        ({"format": "email", "recipients": ["ops@example.com"], "url": "https://x.example.com"}, "not a url"),
        ({"format": "slack"}, "needs a url"),
        ({"format": "teams", "url": "https://x.example.com", "recipients": ["a@b.co"]}, "format email only"),
        ({"format": "email", "recipients": ["not an address"]}, "recipients"),
        ({"format": "email", "recipients": ["a@b.co\r\nBcc: x@y.co"]}, "recipients"),
        ({"format": "email", "recipients": []}, "recipients"),
        ({"format": "fax", "url": "https://x.example.com"}, "format"),
        ({"format": "slack", "url": "http://169.254.169.254/hook"}, "refused"),  # same SSRF rules
    ],
)
def test_bad_channel_subscriptions_are_422(smtp_client: TestClient, body: dict, needle: str) -> None:
    r = smtp_client.post("/v1/webhooks", json=body)
    assert r.status_code == 422 and needle in r.text, r.text


def test_channel_subscriptions_through_the_api(client: TestClient, smtp_client: TestClient) -> None:
    r = client.post("/v1/webhooks", json={"format": "email", "recipients": ["ops@example.com"]})
    assert r.status_code == 422 and "NLP_SMTP_HOST" in r.text  # no SMTP server configured
    r = smtp_client.post("/v1/webhooks", json={"format": "email", "recipients": ["ops@example.com"]})
    assert r.status_code == 201, r.text
    mail = r.json()
    assert mail["format"] == "email" and mail["recipients"] == ["ops@example.com"]
    two = ["a@example.com", "b@example.com"]
    r = smtp_client.patch(f"/v1/webhooks/{mail['id']}", json={"recipients": two})
    assert r.status_code == 200 and r.json()["recipients"] == two
    r = smtp_client.patch(f"/v1/webhooks/{mail['id']}", json={"format": "slack"})
    assert r.status_code == 422 and "to or from email" in r.text
    r = smtp_client.post("/v1/webhooks", json={"format": "teams", "url": "http://127.0.0.1:8080/hook"})
    assert r.status_code == 201 and r.json()["format"] == "teams" and r.json()["recipients"] is None
    listed = {w["id"]: w["format"] for w in smtp_client.get("/v1/webhooks").json()["items"]}
    assert listed == {mail["id"]: "email", r.json()["id"]: "teams"}


def test_message_of_other_events_is_readable() -> None:
    ping = message_of({"id": "evt_1", "type": "webhook.ping", "data": {"webhook_id": "wh_1"}})
    assert ping.title == "Test notification" and ping.severity is None
    incident = message_of(
        {
            "id": "evt_2",
            "type": "incident.created",
            "data": {"incident": {"id": "inc_1", "headline": "Tax overcharges", "severity": "high"}},
        },
        PUBLIC,
    )
    assert incident.headline == "Tax overcharges" and incident.link == f"{PUBLIC}/v1/incidents/inc_1"
