"""The dashboard in a real Chromium against a real server with demo data holding an incident.

The server runs the real encoder and heads (tests/ui/browser.py). Signs in, sees the incident's alert on the
overview, opens it, acknowledges it; sees the incident on the overview (a band over its window, a marker with
its headline on hover), opens it from the chart, acknowledges and assigns it (its history shows both);
searches (and "more like this", and adds a result to a topic), opens the impact map and a touchpoint's
comments, the topics and models pages (promotes a version); saves screenshots under ``var/screenshots/``;
fails on any console error, failed request or HTTP error. A search-only key sees the pages without the action
buttons and the API refuses the actions. Skipped without a system Chromium.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from nlp_service.demo.generator import write_jsonl
from nlp_service.demo.loader import load
from tests.models_admin.test_promote_api import registry_with_second_version
from tests.ui.browser import PageProblems, Server, require_browser, running_server, screenshot, wait_ready
from tests.ui.conftest import demo_config, detect_over_demo

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_browser()
    tmp = tmp_path_factory.mktemp("ui")
    registry_with_second_version(tmp / "models")
    with running_server(tmp, {"NLP_MODELS_DIR": str(tmp / "models")}) as server:
        path = tmp / "demo.jsonl"
        write_jsonl(demo_config(), path)
        result = load(path, server.url, batch_size=250, api_key=server.keys["admin"], progress=False)
        assert result.created + result.existing == result.sent  # a retried batch may count as existing
        with server.client(server.keys["admin"]) as client:
            assert detect_over_demo(client, headers={})
        yield server


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_browser(), args=["--no-sandbox"])
        yield browser
        browser.close()


def signed_in(browser: Any, server: Server, key: str) -> tuple[Any, Any, PageProblems]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(f"{server.url}/ui/overview")
    page.wait_for_selector("#signin")
    assert page.locator("#nav").count() == 0  # signed out: the sign-in page only
    page.fill("#key", key)
    page.click("button[type=submit]")
    wait_ready(page, "overview")
    return context, page, problems


def incident_marker(page: Any, expected: int) -> Any:
    """The overview chart's incident marker (its trace's first point), after checking the chart has
    ``expected`` incident markers and as many bands (rectangles) over their windows."""
    chart = "document.getElementById('volume-chart')"
    index = page.evaluate(f"() => {chart}.data.findIndex(t => t.meta === 'incident')")
    assert index >= 0, "no incident trace on the overview's chart"
    bands = page.evaluate(f"() => ({chart}.layout.shapes || []).filter(s => s.type === 'rect').length")
    assert bands == expected
    points = page.locator(f"#volume-chart .scatterlayer .trace:nth-of-type({index + 1}) .point")
    assert points.count() == expected
    return points.first


def test_analyst_flow(browser: Any, server: Server) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(f"{server.url}/ui/overview")
    page.wait_for_selector("#signin")
    screenshot(page, "00-sign-in")
    page.fill("#key", server.keys["admin"])
    page.click("button[type=submit]")
    wait_ready(page, "overview")
    page.wait_for_selector("#volume-chart .main-svg")
    page.wait_for_selector("#sentiment-chart .main-svg")
    rows = page.locator("section:has(h2:text('Alerts in this period')) tbody tr")
    row = rows.filter(has_text=re.compile(r"Pricing|Billing|eu-west"))  # the tax-on-full-price incident
    assert row.count() >= 1, page.inner_text("main")[:2000]
    screenshot(page, "01-overview")

    row.first.click()
    wait_ready(page, "alerts")
    page.wait_for_selector("#alert-detail")
    page.wait_for_selector("#alert-chart .main-svg")
    assert "eu-west" in page.inner_text("#detail")
    assert page.locator("#detail table tbody tr").count() >= 1  # representative comments
    assert page.locator("#alert-incident").count() == 1  # the incident's alert links to it
    screenshot(page, "02-alert")
    page.fill("#note", "checking the tax rule change with pricing")
    page.click("#acknowledge")
    page.wait_for_selector('#alert-detail[data-status="acknowledged"]')
    assert "checking the tax rule" in page.inner_text("#detail")
    screenshot(page, "03-alert-acknowledged")

    page.goto(f"{server.url}/ui/overview")
    wait_ready(page, "overview")
    listed = page.locator("#overview-incidents tbody tr")
    assert listed.count() == 1 and "eu-west" in listed.first.inner_text()
    marker = incident_marker(page, 1)
    marker.hover(force=True)
    page.wait_for_function(
        "() => /Incident .*eu-west/"
        ".test(document.querySelector('#volume-chart .hoverlayer')?.textContent || '')"
    )
    screenshot(page, "12-overview-incident")
    marker.click(force=True)
    wait_ready(page, "alerts")
    page.wait_for_selector('#incident-detail[data-status="new"]')
    assert "eu-west" in page.inner_text("#incident-detail")
    page.fill("#note", "tax rule change: pricing team on it")
    page.click("#acknowledge")
    page.wait_for_selector('#incident-detail[data-status="acknowledged"]')
    page.fill("#owner", "ana@example.com")
    page.click("#assign")
    page.wait_for_selector("#owner-label:has-text('ana@example.com')")
    history = page.inner_text("#history")
    assert "acknowledged (new → acknowledged)" in history and "assigned" in history, history
    assert "pricing team on it" in history
    members = page.inner_text("section:has(h2:text('Member alerts')) tbody")
    assert "acknowledged" in members and "new" not in members  # the members followed the incident
    screenshot(page, "13-incident-acknowledged-assigned")

    page.goto(f"{server.url}/ui/search?q=charged+tax+on+the+full+price&mode=hybrid")
    wait_ready(page, "search")
    assert page.locator("#results li").count() >= 5
    assert "tax" in page.inner_text("#results li >> nth=0").lower()
    first = page.locator("#results li").first
    first.locator("select").select_option("pricing_promotions")
    first.locator("button.add-example").click()
    page.wait_for_selector("#results li >> nth=0 >> text=added: taxonomy version 2")
    screenshot(page, "04-search")
    page.click("#results li >> nth=0 >> a.more-like")
    wait_ready(page, "search")
    assert page.locator("#results li").count() >= 1

    page.goto(f"{server.url}/ui/impact")
    wait_ready(page, "impact")
    page.wait_for_selector("#impact-chart .scatterlayer .point")
    page.locator("#impact-chart .scatterlayer .point").first.click(force=True)
    page.wait_for_selector("#touchpoint-comments table tbody tr")
    screenshot(page, "05-impact-map")

    page.goto(f"{server.url}/ui/topics")
    wait_ready(page, "topics")
    assert page.locator("#topics details").count() >= 5
    assert page.locator("button.activate").count() == 1  # version 2, made by "Add as example"
    screenshot(page, "06-topics")

    page.goto(f"{server.url}/ui/models")
    wait_ready(page, "models")
    promote = page.locator("section:has(h2:text-is('sentiment')) button.promote")
    assert promote.count() == 1  # the version that is not active
    promote.click()
    page.wait_for_selector("section:has(h2:text-is('sentiment')) tr:has-text('v2') .badge:text-is('served')")
    wait_ready(page, "models")
    screenshot(page, "07-models")

    page.goto(f"{server.url}/ui/alerts?status=")
    wait_ready(page, "alerts")
    screenshot(page, "08-alerts")
    page.click("#signout")
    page.wait_for_selector("#signin")
    assert problems.take() == []
    context.close()


def test_search_only_key_sees_pages_without_actions(browser: Any, server: Server) -> None:
    context, page, problems = signed_in(browser, server, server.keys["search"])
    assert "search" in page.inner_text("#who")
    assert page.locator("#volume-chart").count() == 0  # series and alerts need the alerts scope
    for name, path in [("alerts", "/ui/alerts"), ("models", "/ui/models"), ("topics", "/ui/topics")]:
        page.goto(server.url + path)
        wait_ready(page, name)
        assert (
            page.locator(
                "#acknowledge, #resolve, #close, #assign, #add-note, .promote, .rollback, .activate, .accept"
            ).count()
            == 0
        )
    page.goto(f"{server.url}/ui/search?q=late+parcel")
    wait_ready(page, "search")
    assert page.locator("#results li").count() >= 1 and page.locator(".add-example").count() == 0
    screenshot(page, "09-search-only-key")
    assert problems.take() == []
    csrf = next(c["value"] for c in context.cookies() if c["name"] == "nlp_csrf")
    with server.client(server.keys["admin"]) as admin:
        alert_id = admin.get("/v1/alerts").json()["alerts"][0]["id"]
        incident_id = admin.get("/v1/incidents").json()["incidents"][0]["id"]
    for path, body in [
        (f"/v1/alerts/{alert_id}/acknowledge", {}),
        (f"/v1/alerts/{alert_id}/resolve", {}),
        (f"/v1/incidents/{incident_id}/acknowledge", {}),
        (f"/v1/incidents/{incident_id}/assign", {"owner": "mallory"}),
        (f"/v1/incidents/{incident_id}/notes", {"note": "n"}),
        ("/v1/models/sentiment/promote", {"version": "v1"}),
        ("/v1/topics/delivery_shipping/examples", {"positive": [{"text": "late parcel"}]}),
    ]:
        response = context.request.post(server.url + path, data=body, headers={"X-CSRF-Token": csrf})
        assert response.status == 403, (path, response.text())
    context.close()


def test_assign_an_alert(browser: Any, server: Server) -> None:
    context, page, problems = signed_in(browser, server, server.keys["admin"])
    page.goto(f"{server.url}/ui/alerts?status=")
    wait_ready(page, "alerts")
    page.locator("table.grid tbody tr").first.click()
    wait_ready(page, "alerts")
    page.fill("#owner", "ana@example.com", timeout=3000)
    page.click("#assign")
    page.wait_for_selector("#detail:has-text('ana@example.com')", timeout=5000)
    assert problems.take() == []


def test_incident_list_and_drill_down(browser: Any, server: Server) -> None:
    context, page, problems = signed_in(browser, server, server.keys["admin"])
    page.goto(f"{server.url}/ui/alerts?view=incidents&status=")
    wait_ready(page, "alerts")
    page.click("#incidents-tab", timeout=3000)
    wait_ready(page, "alerts")
    page.locator("table.grid tbody tr").first.click(timeout=3000)
    wait_ready(page, "alerts")
    screenshot(page, "10-incident")
    assert problems.take() == []


def test_docs_list_the_operations(browser: Any, server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock", timeout=10_000)
    assert page.locator(".opblock").count() > 20
    screenshot(page, "11-docs")
    assert problems.take() == []
