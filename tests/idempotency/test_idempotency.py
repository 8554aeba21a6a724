"""``Idempotency-Key`` on creating POSTs: a retry after a timeout gets the first response and nothing is
created twice; a reused key with another body is refused; a retry while the first runs gets 409."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from nlp_service.auth.scopes import SCOPES
from nlp_service.config import Settings
from nlp_service.db import make_engine
from nlp_service.hardening.secretbox import load_secret_box
from tests.auth.conftest import auth, make_key

HOOK = {"url": "http://127.0.0.1:9999/hook", "description": "ops"}


def new_key() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def settings(app_settings: Settings) -> Settings:
    return app_settings.model_copy(update={"webhook_allow_loopback": True, "run_worker_in_process": False})


@pytest.fixture
def admin(database_url: str) -> str:
    return make_key(database_url, list(SCOPES), name="admin")


@pytest.fixture
def client(settings: Settings, start_app, admin: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with start_app(settings) as test_client:
        test_client.headers.update(auth(admin))
        yield test_client


def rows(database_url: str, query: str) -> list[tuple]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        engine.dispose()


@contextmanager
def writes_blocked(database_url: str, seconds: float) -> Iterator[threading.Thread]:
    """Block writes to ``webhook_subscriptions`` for ``seconds`` from another connection (SQLite: the whole
    database's write lock; PostgreSQL: a table lock), in a thread; yields once the lock is held."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        if database_url.startswith("sqlite"):
            conn = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(seconds)
            conn.execute("ROLLBACK")
            conn.close()
        else:
            engine = make_engine(database_url)
            with engine.begin() as conn:
                conn.execute(text("LOCK TABLE webhook_subscriptions IN SHARE ROW EXCLUSIVE MODE"))
                held.set()
                time.sleep(seconds)
            engine.dispose()
        done.set()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    try:
        yield thread
    finally:
        thread.join(seconds + 10)


def wait_for(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_a_retry_after_a_timeout_gets_the_same_webhook_and_only_one_is_created(
    settings: Settings, start_app, admin: str, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    key = new_key()
    with start_app(settings.model_copy(update={"request_timeout_s": 0.3})) as client:
        client.headers.update(auth(admin))
        with writes_blocked(database_url, 1.5):
            first = client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": key})
        assert first.status_code == 503  # the client gave up; the server's work went on
        wait_for(lambda: len(rows(database_url, "SELECT id FROM webhook_subscriptions")) == 1)
        retry = client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": key})
        assert retry.status_code == 201, retry.text
        box = load_secret_box(settings)
        stored = [
            (id_, box.open(sealed))
            for id_, sealed in rows(database_url, "SELECT id, secret FROM webhook_subscriptions")
        ]
        assert [(retry.json()["id"], retry.json()["secret"])] == stored  # the same webhook, and only it
        assert retry.headers.get("idempotent-replayed") == "true"
        again = client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": key})
        assert again.json() == retry.json()
        assert len(rows(database_url, "SELECT id FROM webhook_subscriptions")) == 1
        # Without the header, a POST creates as before.
        assert client.post("/v1/webhooks", json=HOOK).status_code == 201
        assert len(rows(database_url, "SELECT id FROM webhook_subscriptions")) == 2


def test_the_same_key_with_another_body_is_refused(client: TestClient, database_url: str) -> None:
    key = new_key()
    first = client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    # Key order and spacing do not matter: it is the same request.
    same = client.post(
        "/v1/webhooks",
        content='{"description": "ops",  "url": "http://127.0.0.1:9999/hook"}',
        headers={"Idempotency-Key": key, "content-type": "application/json"},
    )
    assert same.status_code == 201 and same.json() == first.json()
    other = client.post(
        "/v1/webhooks", json={**HOOK, "description": "billing"}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422, other.text
    assert other.json()["detail"][0]["type"] == "idempotency_key_reused"
    elsewhere = client.post(
        "/v1/keys", json={"name": "x", "scopes": ["classify"]}, headers={"Idempotency-Key": key}
    )
    assert elsewhere.status_code == 422  # the key is bound to its endpoint too
    assert len(rows(database_url, "SELECT id FROM webhook_subscriptions")) == 1
    assert len(rows(database_url, "SELECT id FROM api_keys")) == 1  # the admin key only


def test_a_retry_of_create_key_returns_the_key_once_created_and_never_stores_it_readable(
    client: TestClient, database_url: str
) -> None:
    key = new_key()
    body = {"name": "ci", "scopes": ["classify"]}
    first = client.post("/v1/keys", json=body, headers={"Idempotency-Key": key})
    retry = client.post("/v1/keys", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert sorted(r[0] for r in rows(database_url, "SELECT name FROM api_keys")) == ["admin", "ci"]
    assert (
        client.post("/v1/classify", json={"texts": ["hi"]}, headers=auth(retry.json()["key"])).status_code
        == 200
    )
    (stored,) = rows(database_url, "SELECT body FROM idempotency_keys")
    secret_part = first.json()["key"].removeprefix(f"nlp_{first.json()['id']}_")
    assert len(secret_part) >= 32
    assert secret_part not in stored[0] and key not in stored[0]


def test_a_retry_of_rotate_secret_rotates_once(
    client: TestClient, database_url: str, settings: Settings
) -> None:
    webhook_id = client.post("/v1/webhooks", json=HOOK).json()["id"]
    path = f"/v1/webhooks/{webhook_id}/rotate-secret"
    key = new_key()
    first = client.post(path, headers={"Idempotency-Key": key})
    retry = client.post(path, headers={"Idempotency-Key": key})
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    ((sealed,),) = rows(database_url, "SELECT secret FROM webhook_subscriptions")
    secret = load_secret_box(settings).open(sealed)
    assert secret == first.json()["secret"]
    assert client.post(path, headers={"Idempotency-Key": new_key()}).json()["secret"] != secret


def test_keys_are_scoped_per_client(client: TestClient, database_url: str) -> None:
    other = make_key(database_url, ["webhooks"], name="other")
    key = new_key()
    mine = client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": key})
    theirs = client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": key, **auth(other)})
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


@pytest.mark.parametrize("bad", ["short", "x" * 256, "has space in it, 16+"])
def test_a_malformed_key_is_422(client: TestClient, bad: str) -> None:
    response = client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": bad})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "Idempotency-Key"


def test_a_retry_while_the_first_is_running_gets_409(client: TestClient, database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip(
            "SQLite's write lock serialises the claim itself; tests/idempotency/test_claims.py covers it"
        )
    key = new_key()
    results: dict[str, object] = {}
    with writes_blocked(database_url, 1.5):
        first = threading.Thread(
            target=lambda: results.update(
                first=client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": key})
            )
        )
        first.start()
        wait_for(lambda: len(rows(database_url, "SELECT id FROM idempotency_keys")) == 1)
        during = client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": key})
        assert during.status_code == 409, during.text
        assert int(during.headers["retry-after"]) >= 1
    first.join(10)
    assert results["first"].status_code == 201  # type: ignore[attr-defined]
    after = client.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": key})
    assert after.json() == results["first"].json()  # type: ignore[attr-defined]
    assert len(rows(database_url, "SELECT id FROM webhook_subscriptions")) == 1
