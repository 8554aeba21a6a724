"""Fixtures for the dashboard: an app with demo data holding an incident, detection run over it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp_service.demo.generator import DemoConfig, Incident, write_jsonl
from nlp_service.demo.loader import load
from tests.auth.conftest import keyed_client, new_key  # noqa: F401  (fixtures shared with tests/auth)

DEMO_START = date(2024, 3, 4)
DEMO_DAYS = 28


def demo_config(n: int = 1500) -> DemoConfig:
    """Seeded demo comments over four weeks, with the tax-on-full-price burst in eu-west on day 21."""
    return DemoConfig(
        n=n,
        seed=5,
        start=DEMO_START,
        days=DEMO_DAYS,
        incident=Incident(day=DEMO_START + timedelta(days=21), region="eu-west", count=60),
    )


def detect_over_demo(client: TestClient, headers: dict[str, str] | None = None) -> list[str]:
    """Run detection over the demo's last week (where the incident is); returns the alert ids."""
    at = datetime.combine(DEMO_START + timedelta(days=DEMO_DAYS), datetime.min.time(), tzinfo=UTC)
    response = client.post(
        "/v1/detect", json={"at": at.isoformat(), "lookback_s": 7 * 86400}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["alert_ids"])


@pytest.fixture
def demo_client(app_client: TestClient, tmp_path: Path) -> Iterator[TestClient]:
    """The app (keys off) with the demo comments stored and detection run: at least one alert."""
    path = tmp_path / "demo.jsonl"
    write_jsonl(demo_config(), path)
    load(path, "", batch_size=250, progress=False, client=app_client)
    assert detect_over_demo(app_client)
    yield app_client
