"""End to end on a real server (uvicorn, the real encoder, SQLite, the in-process worker): a taxonomy made
through the API, comments ingested over a month, a topic taught by example and activated; stored comments'
tags, counts and series follow after the re-tag, and the change raises no alert. Then a burst of a new kind of
complaint comes out as one suggestion and one ``emerging_topic`` alert."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.servers import running_server

pytestmark = pytest.mark.slow


TAXONOMY = {
    "name": "shop",
    "default_threshold": 0.4,
    "topics": [
        {
            "id": "delivery",
            "name": "Delivery",
            "description": "parcels and deliveries arriving late, lost or damaged",
            "examples": ["my parcel arrived late", "the courier lost my package", "delivery took two weeks"],
        },
        {
            "id": "app",
            "name": "App",
            "description": "the mobile app crashing, freezing or failing to load",
            "examples": ["the app keeps crashing", "app freezes when I open it", "the app will not load"],
        },
        {
            "id": "staff",
            "name": "Staff",
            "description": "friendly or rude shop staff and employees",
            "examples": ["the staff were very friendly", "the cashier was rude to me", "helpful employees"],
        },
    ],
}
TAX_TOPIC = {
    "id": "sales_tax",
    "name": "Sales tax",
    "description": "customers charged the wrong sales tax",
    "examples": ["I was charged the wrong sales tax"],
}

DELIVERY = [
    "my parcel came {n} days late",
    "the courier lost order {n}",
    "package {n} arrived damaged and late",
]
APP = [
    "the app crashed {n} times today",
    "app freezes on screen {n}",
    "the app will not load after update {n}",
]
STAFF = ["the staff at store {n} were lovely", "cashier {n} was rude", "employee {n} helped me a lot"]
TAX = [
    "I was charged sales tax twice on order {n}",
    "the sales tax on receipt {n} is wrong",
    "why did you add tax to tax-free item {n}",
    "overcharged on state sales tax again, order {n}",
    "sales tax rate on invoice {n} is too high",
]

BURST = [
    "the self-checkout scanner rejected my coupon {n}",
    "self-checkout scanner will not accept coupon {n}",
    "my paper coupon {n} fails at the self-checkout scanner",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("e2e")
    env = {
        "NLP_DATABASE_URL": f"sqlite:///{tmp / 'e2e.db'}",
        "NLP_VAR_DIR": str(tmp / "var"),
        "NLP_RUN_WORKER_IN_PROCESS": "true",
        "NLP_DETECTION_INTERVAL_S": "86400",  # detection runs when the test asks
        "NLP_TAXONOMY_POLL_S": "0.5",
        "NLP_RATE_LIMIT_PER_S": "0",
        "NLP_SEARCH_SAVE_INTERVAL_S": "0",
    }
    with running_server(env, tmp / "server.log", fake_engine=False, timeout_s=240) as url:
        with httpx.Client(base_url=url, timeout=120) as client:
            yield client


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def wait_job(client: httpx.Client, job: dict[str, Any], timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen_progress = []
    while time.monotonic() < deadline:
        job = ok(client.get(f"/v1/topics/jobs/{job['id']}"))
        seen_progress.append((job["done"], job["total"]))
        if job["status"] in ("succeeded", "failed", "superseded"):
            assert job["status"] == "succeeded", job
            return job
        time.sleep(0.2)
    raise AssertionError(f"re-tag job not done: {job}")


def comments_for(days: int, end: datetime) -> list[dict[str, Any]]:
    """Per day: 3 delivery, 3 app, 3 staff and 2 sales-tax comments, spread over the day."""
    out = []
    for d in range(days):
        day = end - timedelta(days=days - d)
        texts = [t.format(n=d) for t in (*DELIVERY, *APP, *STAFF)] + [
            TAX[(2 * d + k) % 5].format(n=d) for k in (0, 1)
        ]
        for i, text in enumerate(texts):
            out.append(
                {
                    "id": f"d{d}-{i}",
                    "text": text,
                    "created_at": (day + timedelta(hours=1 + 2 * i)).isoformat(),
                    "source": "survey",
                    "region": "OH" if i % 2 else "CA",
                }
            )
    return out


def ingest(client: httpx.Client, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 500):
        r = client.post("/v1/comments", json={"comments": items[start : start + 500]})
        assert r.status_code in (200, 201), r.text


def topic_ids(client: httpx.Client, comment_id: str) -> list[str]:
    return [t["id"] for t in ok(client.get(f"/v1/comments/{comment_id}"))["analysis"]["topics"]]


def test_teach_activate_retag_then_discover(server: httpx.Client) -> None:
    client = server
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    days = 30
    start = now - timedelta(days=days + 1)

    # 1. a taxonomy made through the API, active before any comment arrives
    made = ok(client.put("/v1/topics/taxonomy", params={"activate": "true"}, json=TAXONOMY))
    wait_job(client, made["retag_job"])
    deadline = time.monotonic() + 10
    while ok(client.get("/info"))["model_versions"]["topics"] != f"taxonomy@v{made['version']['id']}":
        assert time.monotonic() < deadline, "the activated version is not served"
        time.sleep(0.2)

    # 2. a month of comments
    items = comments_for(days, now)
    ingest(client, items)
    tax_ids = [c["id"] for c in items if "tax" in c["text"]]
    assert not any("sales_tax" in topic_ids(client, cid) for cid in tax_ids[:5])
    before = ok(client.post("/v1/detect", json={"lookback_s": 6 * 86400}))
    alerts_before = {a["id"] for a in ok(client.get("/v1/alerts", params={"limit": 200}))["alerts"]}

    # 3. teach a new topic by example (stored comments, by id) and activate it
    ok(client.post("/v1/topics", json=TAX_TOPIC), 201)
    taught = ok(
        client.post(
            "/v1/topics/sales_tax/examples",
            json={
                "positive": [{"comment_id": cid} for cid in tax_ids[:8]],
                "negative": [{"comment_id": "d0-0"}, {"comment_id": "d0-3"}, {"comment_id": "d0-6"}],
            },
        )
    )
    topic = ok(client.get("/v1/topics/sales_tax"))
    assert topic["method"] == "learned" and topic["cv_recall"] > 0.5
    activated = ok(client.post(f"/v1/topics/versions/{taught['version']['id']}/activate"), 202)
    job = wait_job(client, activated["retag_job"])
    assert job["done"] == job["total"] >= len(items)

    # 4. stored comments' tags, counts and series follow, for the whole history
    tagged = [cid for cid in tax_ids if "sales_tax" in topic_ids(client, cid)]
    assert len(tagged) >= 0.9 * len(tax_ids), (len(tagged), len(tax_ids))
    others = [c["id"] for c in items if "tax" not in c["text"]]
    wrongly = [cid for cid in others if "sales_tax" in topic_ids(client, cid)]
    assert len(wrongly) <= 0.05 * len(others), wrongly[:10]
    volumes = {
        t["id"]: t for t in ok(client.get("/v1/topics", params={"start": start.isoformat()}))["topics"]
    }
    assert volumes["sales_tax"]["count"] == len(tagged) + len(wrongly)
    series = ok(
        client.get(
            "/v1/topics/sales_tax/series",
            params={"bucket": "day", "since": start.isoformat()},
        )
    )
    assert sum(1 for p in series["points"] if p["count"] > 0) >= days - 1
    assert sum(p["count"] for p in series["points"]) == volumes["sales_tax"]["count"]

    # 5. the change itself raises no alert
    after = ok(client.post("/v1/detect", json={"lookback_s": 6 * 86400}))
    alerts_after = {a["id"] for a in ok(client.get("/v1/alerts", params={"limit": 200}))["alerts"]}
    assert alerts_after == alerts_before, (before, after)

    # 6. a burst of a new kind of complaint: one suggestion, one emerging_topic alert
    burst = [
        {
            "id": f"burst-{i}",
            "text": BURST[i % len(BURST)].format(n=i),
            "created_at": (now - timedelta(hours=20) + timedelta(minutes=25 * i)).isoformat(),
            "source": "survey",
            "region": "OH",
        }
        for i in range(40)
    ]
    ingest(client, burst)
    run = ok(client.post("/v1/topics/suggestions/refresh", json={"at": now.isoformat()}))
    burst_ids = {c["id"] for c in burst}
    hits = [s for s in run["suggestions"] if {r["id"] for r in s["representatives"]} & burst_ids]
    assert len(hits) == 1, [(s["keywords"], s["size"]) for s in run["suggestions"]]
    [suggestion] = hits
    assert {r["id"] for r in suggestion["representatives"]} <= burst_ids
    assert {"coupon", "scanner", "self-checkout"} & {w for k in suggestion["keywords"] for w in k.split()}
    emerging = ok(client.get("/v1/alerts", params={"kind": "emerging_topic"}))["alerts"]
    assert len(emerging) == 1, emerging
    explanation = ok(client.get(f"/v1/alerts/{emerging[0]['id']}"))["explanation"]
    assert explanation["keywords"] and {r["id"] for r in explanation["representatives"]} <= burst_ids
