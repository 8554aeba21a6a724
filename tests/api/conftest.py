"""Fixtures for API tests: one real engine per test session (loading takes a few seconds)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp_service.config import Settings
from nlp_service.main import create_app
from tests.conftest import local_client


@pytest.fixture(scope="session")
def real_engine():
    """The real encoder, heads and topic scorer, as shipped under models/."""
    from nlp_service.inference.engine import Engine

    engine = Engine(Settings())
    engine.warm_up()
    return engine


def wait_ready(client: TestClient, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/health").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"service not ready: {client.get('/health').json()}")


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
