"""Promotion, rollback and hot reload of heads in a running app; heads of another encoder are refused."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp_service.config import REPO_ROOT, Settings
from nlp_service.inference.engine import Engine
from nlp_service.inference.registry import ModelRegistry
from nlp_service.main import create_app
from tests.conftest import local_client, wait_ready

pytestmark = pytest.mark.slow


@pytest.fixture
def registry_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped models, with a second sentiment version (same weights)."""
    models = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models", models)
    registry = ModelRegistry(models)
    active = registry.active_version("sentiment")
    version, path = registry.new_version_dir("sentiment")
    path.rmdir()
    shutil.copytree(models / "sentiment" / active, path)
    config = json.loads((path / "config.json").read_text())
    config["version"] = version
    (path / "config.json").write_text(json.dumps(config))
    return models


def _app(tmp_path: Path, models: Path, real_engine: Engine, poll_s: float) -> TestClient:
    settings = Settings(var_dir=tmp_path / "var", models_dir=models, registry_poll_s=poll_s)
    engine = Engine(settings, encoder=real_engine.encoder)
    return local_client(create_app(settings, engine=engine))


def _served(client: TestClient) -> str:
    response = client.post("/v1/classify", json={"texts": ["fine"], "include": ["sentiment"]})
    assert response.status_code == 200, response.text
    return response.json()["model_versions"]["sentiment"]


def test_promote_reload_and_rollback(tmp_path, registry_copy, real_engine) -> None:
    registry = ModelRegistry(registry_copy)
    old, new = registry.versions("sentiment")[-2:]
    registry.promote("sentiment", old)
    with _app(tmp_path, registry_copy, real_engine, poll_s=0) as client:
        wait_ready(client)
        assert _served(client) == old
        listed = client.get("/v1/models").json()
        sentiment = next(t for t in listed["tasks"] if t["task"] == "sentiment")
        assert {v["version"] for v in sentiment["versions"]} >= {old, new}
        assert [v["version"] for v in sentiment["versions"] if v["serving"]] == [old]

        registry.promote("sentiment", new)
        assert _served(client) == old  # nothing changes until a reload
        reloaded = client.post("/v1/models/reload").json()
        assert reloaded["changed"] and reloaded["serving"]["sentiment"] == new
        assert _served(client) == new

        assert registry.rollback("sentiment") == old
        client.post("/v1/models/reload")
        assert _served(client) == old


def test_head_of_another_encoder_is_refused_old_models_stay(tmp_path, registry_copy, real_engine) -> None:
    registry = ModelRegistry(registry_copy)
    new = registry.versions("sentiment")[-1]
    config_file = registry_copy / "sentiment" / new / "config.json"
    config = json.loads(config_file.read_text())
    config["encoder"]["sha256"] = "0" * 64
    config_file.write_text(json.dumps(config))
    registry.promote("sentiment", registry.versions("sentiment")[0])
    with _app(tmp_path, registry_copy, real_engine, poll_s=0) as client:
        wait_ready(client)
        before = _served(client)
        registry.promote("sentiment", new)
        response = client.post("/v1/models/reload")
        assert response.status_code == 409
        assert "0000000000" in response.json()["error"] and "sha256" in response.json()["error"]
        assert _served(client) == before


def test_watcher_serves_a_promotion_without_a_restart(tmp_path, registry_copy, real_engine) -> None:
    registry = ModelRegistry(registry_copy)
    old, new = registry.versions("sentiment")[-2:]
    registry.promote("sentiment", old)
    with _app(tmp_path, registry_copy, real_engine, poll_s=0.1) as client:
        wait_ready(client)
        assert _served(client) == old
        registry.promote("sentiment", new)
        deadline = time.monotonic() + 30
        while _served(client) != new:
            assert time.monotonic() < deadline, "promotion not picked up"
            time.sleep(0.1)
