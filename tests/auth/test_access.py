"""Every /v1 endpoint refuses a missing key (401) and a key without its scope (403).

Routes are read from the app itself, so endpoints added later are covered without editing this file.
"""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from nlp_service.api import check_scopes
from nlp_service.auth.deps import ScopeRequirement, require_scope, route_scopes
from nlp_service.auth.scopes import SCOPES
from nlp_service.config import Settings
from tests.auth.conftest import auth, make_key

OPEN_PATHS = {"/health", "/info", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc"}  # docs: offline
# The dashboard's pages and session routes check the visitor themselves (nlp_service.ui.views.visitor);
# tests/ui covers them. Its data comes from /v1 and from /ui/api/overview (scoped).
UI_SELF_CHECKED = {"/ui", "/ui/vendor/plotly.min.js", "/ui/signin", "/ui/{page}", "/ui/session", "/ui/api/me"}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def call(client: TestClient, method: str, path: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    return client.request(method, concrete(path), json=body, headers=headers)


def test_every_route_has_a_scope_or_is_open(keyed_client: TestClient) -> None:
    routes = route_scopes(keyed_client.app)  # type: ignore[arg-type]
    assert any(r.path == "/v1/classify" for r in routes)
    for route in routes:
        assert route.scope is not None or route.path in OPEN_PATHS | UI_SELF_CHECKED, route


def test_expected_scopes(keyed_client: TestClient) -> None:
    scopes = {(r.method, r.path): r.scope for r in route_scopes(keyed_client.app)}  # type: ignore[arg-type]
    assert scopes[("POST", "/v1/classify")] == "classify"
    assert scopes[("GET", "/v1/keys")] == "admin"
    for (method, path), scope in scopes.items():
        if path.startswith("/v1/comments"):
            assert scope == ("search" if method == "GET" else "ingest")
        if path.startswith(("/v1/search", "/v1/insights")):
            assert scope == "search"
        if path.startswith(("/v1/webhooks", "/v1/deliveries")):
            assert scope == "webhooks"
        if path.startswith(("/v1/alerts", "/v1/detect")) or path.endswith("/series"):
            assert scope == "alerts", (method, path)
        elif path.startswith("/v1/topics"):  # reads under search, taxonomy changes under topics
            assert scope == ("search" if method == "GET" else "topics"), (method, path)


def test_every_v1_route_refuses_missing_and_wrong_keys(keyed_client: TestClient, database_url: str) -> None:
    routes = [r for r in route_scopes(keyed_client.app) if r.path.startswith("/v1")]  # type: ignore[arg-type]
    assert routes
    others = {scope: make_key(database_url, [s for s in SCOPES if s != scope]) for scope in SCOPES}
    for route in routes:
        missing = call(keyed_client, route.method, route.path)
        assert missing.status_code == 401, (route, missing.text)
        assert missing.json()["type"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        bad = call(keyed_client, route.method, route.path, auth("nlp_0123456789abcdef_" + "x" * 43))
        assert bad.status_code == 401, (route, bad.text)
        wrong = call(keyed_client, route.method, route.path, auth(others[route.scope]))  # type: ignore[index]
        assert wrong.status_code == 403, (route, wrong.text)
        assert wrong.json()["type"] == "forbidden"
        right = call(keyed_client, route.method, route.path, auth(keyed_client.admin_key))  # type: ignore[attr-defined]
        assert right.status_code not in (401, 403), (route, right.text)


def test_open_endpoints_need_no_key(keyed_client: TestClient) -> None:
    for path in ("/health", "/metrics", "/openapi.json", "/docs"):  # /info needs the real encoder
        assert keyed_client.get(path).status_code == 200, path


def test_key_works_for_its_scope_and_revocation_is_immediate(keyed_client: TestClient) -> None:
    admin = auth(keyed_client.admin_key)  # type: ignore[attr-defined]
    created = keyed_client.post("/v1/keys", json={"name": "bot", "scopes": ["classify"]}, headers=admin)
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["id"]
    ok = keyed_client.post("/v1/classify", json={"texts": ["great service"]}, headers=auth(key))
    assert ok.status_code == 200, ok.text
    listed = keyed_client.get("/v1/keys", headers=admin).json()["keys"]
    assert key_id in {k["id"] for k in listed} and key not in str(listed)
    assert keyed_client.delete(f"/v1/keys/{key_id}", headers=admin).status_code == 200
    again = keyed_client.post("/v1/classify", json={"texts": ["great service"]}, headers=auth(key))
    assert again.status_code == 401


def test_revocation_from_another_process_is_immediate(keyed_client: TestClient, new_key) -> None:  # type: ignore[no-untyped-def]
    from nlp_service.auth import service
    from nlp_service.db import make_engine, make_sessionmaker, session_scope

    key = new_key("classify")
    assert keyed_client.post("/v1/classify", json={"texts": ["ok"]}, headers=auth(key)).status_code == 200
    engine = make_engine(keyed_client.app.state.nlp.settings.resolved_database_url())  # type: ignore[attr-defined]
    with session_scope(make_sessionmaker(engine)) as session:  # a separate engine: another process
        service.revoke(db_session=session, key_id=key.split("_")[1])
    engine.dispose()
    assert keyed_client.post("/v1/classify", json={"texts": ["ok"]}, headers=auth(key)).status_code == 401


def test_keys_off_without_keys_and_on_when_required(app_settings: Settings, start_app) -> None:  # type: ignore[no-untyped-def]
    with start_app(app_settings) as client:
        assert client.post("/v1/classify", json={"texts": ["fine"]}).status_code == 200
    required = app_settings.model_copy(update={"require_api_keys": True})
    with start_app(required) as client:
        assert client.post("/v1/classify", json={"texts": ["fine"]}).status_code == 401


def test_creating_the_first_key_turns_keys_on(app_settings: Settings, start_app, new_key) -> None:  # type: ignore[no-untyped-def]
    with start_app(app_settings) as client:
        assert client.get("/v1/topics").status_code == 200
        assert client.get("/v1/keys").status_code == 403  # keys are never managed anonymously
        new_key("admin")  # created in another session, as `nlp-service keys create` would
        assert client.get("/v1/topics").status_code == 401  # at once: "keys off" is not cached
        assert client.get("/v1/keys").status_code == 401


def test_a_router_without_scope_fails_app_creation() -> None:
    app = FastAPI()
    v1 = APIRouter(prefix="/v1")
    scoped, unscoped = APIRouter(), APIRouter()
    scoped.get("/a")(lambda: {})
    unscoped.get("/b")(lambda: {})
    v1.include_router(scoped, dependencies=[require_scope("search")])
    v1.include_router(unscoped)
    app.include_router(v1)
    with pytest.raises(RuntimeError, match="GET /v1/b has no scope"):
        check_scopes(app)


def test_unknown_scope_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        require_scope("everything")  # type: ignore[arg-type]


def test_scope_requirement_repr_and_the_documented_by_endpoint_argument() -> None:
    dependency = require_scope("search", write="ingest", by_endpoint={"topic_series": "alerts"})
    requirement = dependency.dependency
    assert isinstance(requirement, ScopeRequirement)
    assert requirement.scope_for("GET", "topic_series") == "alerts"
    assert requirement.scope_for("POST", "other") == "ingest"
    expected = "require_scope('search', write='ingest', by_endpoint={'topic_series': 'alerts'})"
    assert repr(requirement) == expected
    assert repr(ScopeRequirement("classify")) == "require_scope('classify', write='classify', by_endpoint={})"
