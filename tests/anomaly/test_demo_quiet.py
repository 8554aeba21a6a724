"""Acceptance of issue #15: 60 days of demo data without an incident (``nlp-service demo generate --days 60``)
give at most one alert at the default sensitivity, with detection run over the whole range (hourly and
daily buckets, every topic and topic x segment series). On the fake engine (topics from keywords, see
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from nlp_service.config import Settings
from nlp_service.demo.generator import DemoConfig, generate

START = date(2024, 3, 1)  # the CLI's default start
DAYS = 60
RANGE_S = DAYS * 86400


@pytest.fixture
def quiet_client(app_settings: Settings, start_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(
        update={"run_worker_in_process": False, "detect_sync_max_lookback_s": RANGE_S}
    )
    with start_app(settings) as client:
        yield client


@pytest.mark.slow
@pytest.mark.parametrize("n", [5000, 10_000])  # the CLI's default count, and the default's rate (28 days)
def test_sixty_quiet_days_give_at_most_one_alert(quiet_client: TestClient, n: int) -> None:
    items = list(generate(DemoConfig(n=n, start=START, days=DAYS)))
    for i in range(0, len(items), 500):
        r = quiet_client.post("/v1/comments", json={"comments": items[i : i + 500]})
        assert r.status_code in (200, 201), r.text
    at = datetime(START.year, START.month, START.day, tzinfo=UTC) + timedelta(days=DAYS)
    r = quiet_client.post("/v1/detect", json={"at": at.isoformat(), "lookback_s": RANGE_S})
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["series_scanned"] > 100 and summary["buckets_checked"] > 100_000, summary
    alerts = quiet_client.get("/v1/alerts", params={"limit": 100}).json()
    found = [(a["kind"], a["topic_id"], a["segment"], a["segment_value"], a["window_start"], a["observed"],
              a["baseline"], a["p_value"]) for a in alerts["alerts"]]  # fmt: skip
    print(f"n={n}: {summary['series_scanned']} series, {alerts['total']} alerts {found}")
    assert alerts["total"] <= 1, found
