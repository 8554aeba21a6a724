"""Dashboard render time with 100,000 stored comments, in the system Chromium.

    python bench/ui_render.py [--comments 100000] [--runs 3] [--json OUT.json]

Stores ``--comments`` synthetic comments (``topics.synthetic``, tagged with the shipped taxonomy's topic
ids, over the 90 days up to the demo's last day) straight into a fresh SQLite database, starts the server
(the tests' harness: uvicorn and the fake encoder, as the stored embeddings are synthetic), loads the demo
comments with their incident through the API and runs detection, then opens every page ``--runs`` times
after one warm-up visit and reports the median of: ``render_ms`` (scripts start -> the page drawn with its
data: API calls, DOM, charts), ``ready_ms`` (navigation start -> drawn, including the HTML, scripts and
Plotly from the browser cache) and the API calls each page made. Bar: render < 1000 ms on every page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, write_json  # noqa: E402
from nlp_service.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from nlp_service.demo.generator import write_jsonl  # noqa: E402
from nlp_service.demo.loader import load  # noqa: E402
from nlp_service.topics import synthetic as syn  # noqa: E402
from tests.ui.browser import chromium_path, ready_at_ms, running_server, wait_ready  # noqa: E402
from tests.ui.conftest import DEMO_DAYS, DEMO_START, demo_config, detect_over_demo  # noqa: E402

BAR_MS = 1000
TOPICS = (
    *("delivery_shipping", "pricing_promotions", "billing_payments", "refunds_returns"),
    *("customer_support", "app_website", "account_login", "product_quality"),
)


def store_synthetic(url: str, n: int) -> None:
    """``n`` comments over the 90 days before the demo's end, tagged with the shipped topics' ids."""
    end = datetime.combine(DEMO_START + timedelta(days=DEMO_DAYS), datetime.min.time(), tzinfo=UTC)
    c = syn.centers(len(TOPICS) + 2, seed=0)
    labels = np.random.default_rng(1).integers(0, len(TOPICS) + 2, n)
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as s:
        _, model = syn.store_version(
            db_session=s, tax=syn.taxonomy({t: i for i, t in enumerate(TOPICS)}), c=c
        )
        syn.store_comments(
            db_session=s,
            embeddings=syn.clustered(labels, c, seed=2),
            model=model,
            start=end - timedelta(days=90),
            span=timedelta(days=90),
        )
    engine.dispose()


def settle(client: httpx.Client, timeout_s: float = 600) -> None:
    """Wait until the search index holds every comment and no build runs (the server is otherwise idle)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get("/v1/search/index").json()
        if status["ready"] and not status["building"]:
            break
        time.sleep(1)
    time.sleep(3)


def measure(base: str, key: str, alert: str, incident: str, runs: int) -> dict[str, dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        calls: list[str] = []
        page.on("request", lambda r: calls.append(r.url) if "/v1/" in r.url or "/ui/api/" in r.url else None)
        page.goto(f"{base}/ui/overview")
        page.fill("#key", key)
        page.click("button[type=submit]")
        wait_ready(page, "overview")
        pages = {
            "overview": "/ui/overview",
            "alerts (list + drill-down)": f"/ui/alerts?status=&id={alert}",
            "incident (list + drill-down)": f"/ui/alerts?view=incidents&status=&id={incident}",
            "impact map": "/ui/impact",
            "search (hybrid)": "/ui/search?q=charged+tax+on+the+full+price&mode=hybrid",
            "topics": "/ui/topics",
            "models": "/ui/models",
        }
        out: dict[str, dict[str, Any]] = {}
        for name, path in pages.items():
            ready = path.split("/")[2].split("?")[0]
            render, total, n_calls = [], [], 0
            for i in range(runs + 1):  # the first visit warms the server's and the browser's caches
                calls.clear()
                page.goto(base + path)
                ms = wait_ready(page, ready, timeout_ms=120_000)
                if i:
                    render.append(ms)
                    total.append(ready_at_ms(page))
                    n_calls = len(calls)
            out[name] = {
                "render_ms": statistics.median(render),
                "ready_ms": statistics.median(total),
                "api_calls": n_calls,
            }
        browser.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if chromium_path() is None:
        raise SystemExit("no system Chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        with running_server(
            Path(tmp), prepare=lambda url: store_synthetic(url, args.comments), fake_engine=True
        ) as server:
            demo = Path(tmp) / "demo.jsonl"
            write_jsonl(demo_config(), demo)
            load(demo, server.url, batch_size=250, api_key=server.keys["admin"], progress=False)
            with server.client(server.keys["admin"]) as client:
                alert = detect_over_demo(client)[0]
                incident = client.get("/v1/incidents").json()["incidents"][0]["id"]
                settle(client)
            figures = measure(server.url, server.keys["admin"], alert, incident, args.runs)
    stored = args.comments + demo_config().n + 60
    rows = [
        (f"{name}: render (ms)", f["render_ms"], f"< {BAR_MS}", "ok" if f["render_ms"] < BAR_MS else "OVER")
        for name, f in figures.items()
    ]
    rows += [(f"{name}: navigation -> drawn (ms)", f["ready_ms"], "", "") for name, f in figures.items()]
    rows += [(f"{name}: API calls", f["api_calls"], "", "") for name, f in figures.items()]
    print_table(f"Dashboard pages with {stored:,} stored comments (median of {args.runs})", rows)
    write_json(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
