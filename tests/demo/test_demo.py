"""The demo generator is deterministic and realistic enough; the loader posts it in batches with retries."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp_service.comments.schemas import CommentIn
from nlp_service.demo.generator import DemoConfig, Incident, generate, write_jsonl
from nlp_service.demo.loader import LoadError, load


def test_generator_is_seeded_valid_and_seasonal() -> None:
    cfg = DemoConfig(
        n=3000, seed=3, start=date(2024, 3, 4), days=28, incident=Incident(day=date(2024, 3, 20))
    )
    items = list(generate(cfg))
    assert items == list(generate(cfg))
    assert len(items) == 3060 and len({i["id"] for i in items}) == 3060
    for item in items[:200]:
        CommentIn.model_validate(item)  # every line is a valid API comment
    weekday = Counter(datetime.fromisoformat(i["created_at"]).weekday() for i in items[:3000])
    assert weekday[0] > 1.4 * weekday[6]  # Mondays busier than Sundays
    with_nps = [i for i in items if "nps" in i]
    negative = [i["nps"] for i in with_nps if "late" in i["text"] or "broke" in i["text"]]
    assert sum(negative) / len(negative) < 5
    burst = [i for i in items if "sale price" in i["text"] and i["created_at"].startswith("2024-03-20")]
    assert len(burst) >= 50 and {i["region"] for i in burst} == {"eu-west"}


def test_loader_posts_batches(app_client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "demo.jsonl"
    assert write_jsonl(DemoConfig(n=230, seed=1, days=7), path) == 230
    result = load(path, "", batch_size=100, progress=False, client=app_client)
    assert (result.sent, result.created, result.existing) == (230, 230, 0)
    again = load(path, "", batch_size=100, progress=False, client=app_client)
    assert (again.created, again.existing) == (0, 230)


def test_loader_concurrent_batches_store_everything_once(app_client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "demo.jsonl"
    assert write_jsonl(DemoConfig(n=450, seed=2, days=7), path) == 450
    result = load(path, "", batch_size=40, concurrency=4, progress=False, client=app_client)
    assert (result.sent, result.created, result.existing) == (450, 450, 0)
    listed = app_client.get("/v1/comments", params={"limit": 500}).json()
    ids = [item["id"] for item in listed["comments"]]
    assert len(ids) == len(set(ids)) == 450


def test_loader_rejects_bad_options(tmp_path: Path) -> None:
    path = tmp_path / "demo.jsonl"
    write_jsonl(DemoConfig(n=5, seed=2, days=1), path)
    with pytest.raises(LoadError, match="concurrency"):
        load(path, "http://127.0.0.1:9", concurrency=0, progress=False)
    with pytest.raises(LoadError, match="batch size"):
        load(path, "http://127.0.0.1:9", batch_size=1001, progress=False)
