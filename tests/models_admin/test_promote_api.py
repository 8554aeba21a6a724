"""``POST /v1/models/{task}/promote`` and ``/rollback`` (admin): the registry changes and the app reloads;
bad requests change nothing. The fake engine serves fixed heads, so this checks the registry side; the real
reload path is tests/models_admin/test_models_admin.py (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nlp_service.config import REPO_ROOT, Settings
from nlp_service.inference.registry import ModelRegistry
from nlp_service.main import create_app
from tests.conftest import FakeEngine, local_client, wait_until_ready


def registry_with_second_version(models: Path, task: str = "sentiment") -> str:
    """Copy the shipped models to ``models`` with a second version of ``task`` (same weights); its name."""
    shutil.copytree(REPO_ROOT / "models", models)
    registry = ModelRegistry(models)
    active = registry.active_version(task)
    version, path = registry.new_version_dir(task)
    path.rmdir()
    shutil.copytree(models / task / active, path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "version": version}))
    return version


def test_promote_and_rollback_through_the_api(app_settings: Settings, tmp_path: Path) -> None:
    models = tmp_path / "models"
    version = registry_with_second_version(models)
    registry = ModelRegistry(models)
    engine = FakeEngine(Settings(models_dir=models))
    with local_client(create_app(app_settings, engine=engine)) as client:
        wait_until_ready(client)
        assert client.post("/v1/models/nope/promote", json={"version": "v1"}).status_code == 404
        unknown = client.post("/v1/models/sentiment/promote", json={"version": "v9"})
        assert unknown.status_code == 409 and "v9" in unknown.json()["error"]
        assert client.post("/v1/models/sentiment/promote", json={}).status_code == 422
        assert client.post("/v1/models/sentiment/rollback").status_code == 409  # no earlier version
        assert registry.active_version("sentiment") == "v1"

        promoted = client.post("/v1/models/sentiment/promote", json={"version": version})
        assert promoted.status_code == 200, promoted.text
        assert registry.active_version("sentiment") == version
        listed = client.get("/v1/models").json()
        sentiment = next(t for t in listed["tasks"] if t["task"] == "sentiment")
        assert [v["version"] for v in sentiment["versions"] if v["active"]] == [version]

        assert client.post("/v1/models/sentiment/rollback").status_code == 200
        assert registry.active_version("sentiment") == "v1"
