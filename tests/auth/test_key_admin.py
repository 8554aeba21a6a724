"""Key management over HTTP and the CLI: no escalation, and every key operation audit-logged
(issue 12, finding 12)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp_service import cli
from nlp_service.hardening.logs import JsonFormatter
from tests.auth.conftest import auth

AUDIT = "nlp_service.audit"


def audit_records(caplog: pytest.LogCaptureFixture) -> list[dict]:
    """The audit records as the JSON log would show them."""
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == AUDIT]


def test_a_key_cannot_mint_scopes_it_lacks(keyed_client: TestClient, new_key) -> None:  # type: ignore[no-untyped-def]
    admin_only = auth(new_key("admin", name="admin-only"))
    for scopes in (["classify", "admin"], ["webhooks"], ["admin", "alerts", "classify", "ingest", "search"]):
        refused = keyed_client.post(
            "/v1/keys", json={"name": "escalate", "scopes": scopes}, headers=admin_only
        )
        assert refused.status_code == 403, (scopes, refused.text)
        assert refused.json()["type"] == "forbidden" and "scope" in refused.json()["error"]
    assert (
        keyed_client.post(
            "/v1/keys", json={"name": "peer", "scopes": ["admin"]}, headers=admin_only
        ).status_code
        == 201
    )
    partial = auth(new_key("admin", "classify", name="partial"))
    made = keyed_client.post("/v1/keys", json={"name": "bot", "scopes": ["classify"]}, headers=partial)
    assert made.status_code == 201, made.text
    names = {k["name"] for k in keyed_client.get("/v1/keys", headers=partial).json()["keys"]}
    assert "escalate" not in names and {"peer", "bot"} <= names


def test_a_key_cannot_revoke_a_key_with_more_scopes(keyed_client: TestClient, new_key) -> None:  # type: ignore[no-untyped-def]
    admin_only = auth(new_key("admin", name="admin-only"))
    full_id = keyed_client.admin_key.split("_")[1]  # type: ignore[attr-defined]
    refused = keyed_client.delete(f"/v1/keys/{full_id}", headers=admin_only)
    assert refused.status_code == 403, refused.text
    full = auth(keyed_client.admin_key)  # type: ignore[attr-defined]
    assert keyed_client.post("/v1/classify", json={"texts": ["still works"]}, headers=full).status_code == 200
    weaker = keyed_client.post("/v1/keys", json={"name": "w", "scopes": ["admin"]}, headers=full).json()
    assert keyed_client.delete(f"/v1/keys/{weaker['id']}", headers=admin_only).status_code == 200


def test_http_key_operations_are_audit_logged_with_the_acting_key(
    keyed_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    admin_key = keyed_client.admin_key  # type: ignore[attr-defined]
    actor = admin_key.split("_")[1]
    with caplog.at_level(logging.INFO, logger=AUDIT):
        created = keyed_client.post(
            "/v1/keys", json={"name": "bot", "scopes": ["classify"]}, headers=auth(admin_key)
        )
        key_id = created.json()["id"]
        keyed_client.get("/v1/keys", headers=auth(admin_key))
        keyed_client.delete(f"/v1/keys/{key_id}", headers=auth(admin_key))
        bot_admin = keyed_client.post(
            "/v1/keys", json={"name": "a", "scopes": ["admin"]}, headers=auth(admin_key)
        )
        keyed_client.post(
            "/v1/keys", json={"name": "x", "scopes": ["search"]}, headers=auth(bot_admin.json()["key"])
        )
    records = audit_records(caplog)
    events = [(r["event"], r["actor_key_id"], r.get("target_key_id")) for r in records]
    assert events[:3] == [
        ("key.created", actor, key_id),
        ("key.listed", actor, None),
        ("key.revoked", actor, key_id),
    ]
    assert events[4] == ("key.create_refused", bot_admin.json()["id"], None)
    created_record = records[0]
    assert created_record["scopes"] == ["classify"] and created_record["key_name"] == "bot"
    assert created_record["via"] == "http" and created_record["request_id"]
    assert created.json()["key"].split("_", 2)[2] not in json.dumps(records)  # the secret is never logged


def test_cli_key_operations_are_audit_logged(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NLP_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("NLP_DATABASE_URL", raising=False)
    monkeypatch.setattr(cli, "configure_logging", lambda *a, **k: None)
    with caplog.at_level(logging.INFO, logger=AUDIT):
        assert cli.main(["keys", "create", "--name", "ops", "--scopes", "all"]) == 0
        key_id = capsys.readouterr().out.strip().split("_")[1]
        assert cli.main(["keys", "revoke", key_id]) == 0
    events = [(r["event"], r["actor_key_id"], r["target_key_id"], r["via"]) for r in audit_records(caplog)]
    assert events == [("key.created", None, key_id, "cli"), ("key.revoked", None, key_id, "cli")]
