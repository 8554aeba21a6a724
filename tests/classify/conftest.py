"""Fixtures for classify tests: an app on the real engine (``real_engine`` from tests/conftest.py), and
one whose models never load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp_service.config import Settings
from nlp_service.main import create_app
from tests.conftest import local_client, wait_ready


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", max_wait_ms=2.0)


@pytest.fixture
def client(api_settings: Settings, real_engine) -> Iterator[TestClient]:
    """An app on the real engine, started and ready."""
    with local_client(create_app(api_settings, engine=real_engine)) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture
def cold_client(api_settings: Settings) -> Iterator[TestClient]:
    """An app whose models never load (a missing models folder): validation still answers 4xx."""
    settings = api_settings.model_copy(update={"models_dir": api_settings.var_dir / "no-models"})
    with local_client(create_app(settings)) as test_client:
        yield test_client
