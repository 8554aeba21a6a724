"""Secrets at rest: signing secrets encrypted with a key from the environment (or a private key file),
legacy plaintext rows still read and re-sealed, expired previous secrets cleared, URLs redacted in logs and
events."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from standardwebhooks import Webhook

from nlp_service.config import Settings
from nlp_service.timestamps import utcnow
from nlp_service.webhooks import deliveries, service
from nlp_service.webhooks.signing import generate_secret
from nlp_service.webhooks.tables import WebhookSubscription
from nlp_service.worker import JobContext, load_jobs
from tests.webhooks.conftest import in_tx
from tests.webhooks.receiver import LocalReceiver, Reply

TOKEN = "T0KEN-4f9a"  # a credential some receivers put in their URL


def raw_secrets(sessions, webhook_id: str) -> tuple[str, str | None]:
    """The stored column values, as a database dump or backup would show them."""
    row = in_tx(
        sessions,
        lambda s: s.execute(
            text("SELECT secret, previous_secret FROM webhook_subscriptions WHERE id = :id"),
            {"id": webhook_id},
        ).one(),
    )
    return row[0], row[1]


def run_maintenance(settings: Settings, sessions) -> None:
    """One run of the worker's ``webhook-maintenance`` job, as the worker calls it."""
    spec = load_jobs(["webhook-maintenance"])["webhook-maintenance"]
    spec.fn(JobContext(spec.name, settings, sessions, "test-worker", asyncio.Event()))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_encrypted_at_rest_and_still_sign(client, sessions, receiver: LocalReceiver, drain):
    created = client.post("/v1/webhooks", json={"url": receiver.url}).json()
    first = created["secret"]
    stored, previous = raw_secrets(sessions, created["id"])
    assert first not in stored and not stored.startswith("whsec_") and previous is None

    rotated = client.post(f"/v1/webhooks/{created['id']}/rotate-secret").json()["secret"]
    stored, previous = raw_secrets(sessions, created["id"])
    assert previous is not None
    for plain in (first, rotated):
        assert plain not in stored and plain not in previous
    assert "whsec_" not in stored + previous

    assert client.post(f"/v1/webhooks/{created['id']}/ping").status_code == 202
    drain()
    [req] = receiver.requests
    Webhook(rotated).verify(req.body, req.headers)  # the stored secrets decrypt to the right keys
    Webhook(first).verify(req.body, req.headers)  # ... both of them during the grace period


def test_expired_previous_secret_is_cleared(client, settings: Settings, sessions) -> None:
    webhook_id = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9999/hook"}).json()["id"]
    client.post(f"/v1/webhooks/{webhook_id}/rotate-secret")
    assert raw_secrets(sessions, webhook_id)[1] is not None
    in_tx(  # the grace period is over
        sessions,
        lambda s: s.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == webhook_id)
            .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        ),
    )
    run_maintenance(settings, sessions)
    assert raw_secrets(sessions, webhook_id)[1] is None
    sub = in_tx(sessions, lambda s: s.get(WebhookSubscription, webhook_id))
    assert sub.previous_secret_expires_at is None

    # a rotation without a grace period keeps no previous secret at all
    box = client.app.state.nlp.require_secret_box()
    in_tx(sessions, lambda s: service.rotate_secret(db_session=s, webhook_id=webhook_id, grace_s=0, box=box))
    assert raw_secrets(sessions, webhook_id)[1] is None


def test_legacy_plaintext_rows_are_read_and_resealed(
    client, settings: Settings, sessions, receiver: LocalReceiver, drain
) -> None:
    """Rows written before encryption hold the plain secret: they keep signing, and the job seals them."""
    webhook_id = client.post("/v1/webhooks", json={"url": receiver.url}).json()["id"]
    legacy = generate_secret()
    in_tx(
        sessions,
        lambda s: s.execute(
            text("UPDATE webhook_subscriptions SET secret = :s WHERE id = :id"),
            {"s": legacy, "id": webhook_id},
        ),
    )
    client.post(f"/v1/webhooks/{webhook_id}/ping")
    drain()
    Webhook(legacy).verify(receiver.requests[0].body, receiver.requests[0].headers)

    run_maintenance(settings, sessions)
    stored, _ = raw_secrets(sessions, webhook_id)
    assert legacy not in stored
    assert client.app.state.nlp.require_secret_box().open(stored) == legacy


def test_key_file_when_no_key_is_configured(tmp_path: Path) -> None:
    """The embedded default: a key generated once under var/ (0600), reused on the next start."""
    from nlp_service.hardening.secretbox import SecretBox, SecretBoxError, load_secret_box

    settings = Settings(var_dir=tmp_path / "var")
    box = load_secret_box(settings)
    key_file = tmp_path / "var" / "secret.key"
    assert mode(key_file) == 0o600 and mode(tmp_path / "var") == 0o700
    sealed = box.seal("whsec_abc")
    assert load_secret_box(settings).open(sealed) == "whsec_abc"  # same key after a restart
    assert key_file.read_text().strip() not in sealed

    env_key = SecretBox.generate_key()
    other = tmp_path / "other"
    from_env = load_secret_box(Settings(var_dir=other, secret_keys=env_key))
    assert not other.exists()  # a key from the environment writes no file
    with pytest.raises(SecretBoxError, match="cannot be decrypted"):
        from_env.open(sealed)
    # key rotation: a new primary key first, the old one still decrypts; re-sealing moves rows to the new one
    rotated = load_secret_box(Settings(var_dir=other, secret_keys=f"{SecretBox.generate_key()},{env_key}"))
    old_row = from_env.seal("whsec_xyz")
    assert rotated.open(old_row) == "whsec_xyz" and rotated.needs_reseal(old_row)
    assert not rotated.needs_reseal(rotated.seal("whsec_xyz"))
    with pytest.raises(SecretBoxError, match="NLP_SECRET_KEYS"):
        load_secret_box(Settings(var_dir=other, secret_keys="not-a-fernet-key"))


def test_webhook_urls_are_redacted_in_logs_and_events(client, receiver: LocalReceiver, drain, caplog) -> None:
    """A token in a URL's path or query reaches neither the logs nor others' ``webhook.disabled`` events."""
    caplog.set_level(logging.DEBUG)
    listener = client.post("/v1/webhooks", json={"url": receiver.url, "event_types": ["webhook.disabled"]})
    assert listener.status_code == 201
    with LocalReceiver(default=Reply(410)) as gone:
        url = f"http://127.0.0.1:{gone.port}/hooks/{TOKEN}?token={TOKEN}"
        created = client.post("/v1/webhooks", json={"url": url}).json()
        assert client.post(f"/v1/webhooks/{created['id']}/ping").status_code == 202
        drain()
        assert gone.requests[0].path == f"/hooks/{TOKEN}?token={TOKEN}"  # the real URL is still used
    [req] = receiver.requests
    event = json.loads(req.body)
    assert event["type"] == "webhook.disabled" and event["data"]["webhook_id"] == created["id"]
    assert event["data"]["url"] == f"http://127.0.0.1:{gone.port}/…"
    assert TOKEN not in req.body.decode()
    messages = [record.getMessage() for record in caplog.records]
    assert any(created["id"] in m for m in messages)  # the logs do talk about it...
    assert not [m for m in messages if TOKEN in m]  # ... without the token
    sub = in_tx(client.app.state.nlp.require_db(), lambda s: s.get(WebhookSubscription, created["id"]))
    assert TOKEN not in repr(sub)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/services/T0/B0/xyz?token=1#frag", "https://hooks.example.com/…"),
        ("http://user:pw@10.0.0.1:8080/a", "http://10.0.0.1:8080/…"),
        ("https://[2001:db8::1]:8443/x?y=1", "https://[2001:db8::1]:8443/…"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/", "https://example.com/"),
        ("https://example.com/?", "https://example.com/"),
        ("https://example.com:99999/x", "[redacted URL]"),
        ("not a url", "[redacted URL]"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    from nlp_service.hardening.logs import redact_url

    assert redact_url(url) == shown


def test_a_worker_with_other_keys_sends_nothing_and_says_why(
    client, sessions, receiver: LocalReceiver, drain
) -> None:
    """A worker whose keys cannot open the secret (another host's key file) records a failed attempt."""
    from pydantic import SecretStr

    from nlp_service.hardening.secretbox import SecretBox

    webhook_id = client.post("/v1/webhooks", json={"url": receiver.url}).json()["id"]
    [dlv] = in_tx(sessions, lambda s: [service.ping(db_session=s, webhook_id=webhook_id)])
    drain(secret_keys=SecretStr(SecretBox.generate_key()))
    assert receiver.requests == []
    item = in_tx(sessions, lambda s: deliveries.get_delivery(db_session=s, delivery_id=dlv.id))
    assert item.status == "dead" and "cannot be decrypted" in item.last_error
    assert "NLP_SECRET_KEYS" in item.attempt_log[0].error
    # with the right key again, a retry (POST /v1/deliveries/{id}/retry) goes out
    in_tx(sessions, lambda s: deliveries.retry_delivery(db_session=s, delivery_id=dlv.id))
    drain()
    assert len(receiver.requests) == 1
