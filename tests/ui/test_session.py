"""The dashboard's access rules: pages and assets served offline, sign-in to an HttpOnly SameSite=Strict
cookie, CSRF on every cookie call, sign-out, a search-only key without actions, open mode on loopback."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from nlp_service.ui.views import PAGES, STATIC_DIR, plotly_bundle
from tests.auth.conftest import auth


def _sign_in(client: TestClient, key: str) -> str:
    response = client.post("/ui/session", json={"key": key})
    assert response.status_code == 200, response.text
    return client.cookies["nlp_csrf"]


def test_pages_and_every_asset_are_served_by_the_service(app_client: TestClient) -> None:
    page = app_client.get("/ui/overview")
    assert page.status_code == 200 and 'id="nav"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert app_client.get("/ui", follow_redirects=False).headers["location"] == "/ui/overview"
    assert app_client.get("/ui/nowhere").status_code == 404
    refs = set(re.findall(r'(?:src|href)="(/ui/[^"]+)"', page.text))
    for js in STATIC_DIR.rglob("*.js"):  # every module the pages import, and every file they name
        refs |= set(re.findall(r'"(/ui/(?:static|vendor)/[^"]+\.js)"', js.read_text()))
    refs |= {f"/ui/static/pages/{name}.js" for name in PAGES}
    assert "/ui/vendor/plotly.min.js" in refs and len(refs) > 10
    for ref in sorted(refs):
        response = app_client.get(ref)
        assert response.status_code == 200, ref
    for html in (page.text, (STATIC_DIR / "signin.html").read_text()):
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from another origin
    bundle = app_client.get("/ui/vendor/plotly.min.js")
    assert bundle.content == plotly_bundle().read_bytes() and len(bundle.content) > 1_000_000


def test_signed_out_visitor_sees_only_the_sign_in_page(keyed_client: TestClient) -> None:
    for page in ("/ui/overview", "/ui/alerts", "/ui/models"):
        response = keyed_client.get(page)
        assert response.status_code == 200 and 'id="signin"' in response.text
        assert 'id="nav"' not in response.text
    assert keyed_client.get("/ui/api/me").status_code == 401
    assert keyed_client.get("/ui/api/overview").status_code == 401
    keyed_client.cookies.set("nlp_session", "nlp_0000000000000000_" + "x" * 43)
    assert 'id="signin"' in keyed_client.get("/ui/overview").text  # an unknown key is no session


def test_sign_in_sets_a_strict_http_only_cookie_and_csrf_guards_every_call(keyed_client: TestClient) -> None:
    bad = keyed_client.post("/ui/session", json={"key": "nlp_0000000000000000_" + "y" * 43})
    assert bad.status_code == 401 and "nlp_session" not in keyed_client.cookies
    assert keyed_client.post("/ui/session", content="key=x").status_code == 415
    response = keyed_client.post("/ui/session", json={"key": keyed_client.admin_key})  # type: ignore[attr-defined]
    assert response.status_code == 200
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("nlp_session="))
    csrf_cookie = next(c for c in cookies if c.startswith("nlp_csrf="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
    assert "HttpOnly" not in csrf_cookie and "SameSite=strict" in csrf_cookie
    csrf = keyed_client.cookies["nlp_csrf"]
    assert 'id="nav"' in keyed_client.get("/ui/overview").text
    # The cookie alone (what a cross-site request would carry) is refused, reads included.
    assert keyed_client.get("/v1/alerts").status_code == 403
    assert keyed_client.get("/v1/alerts", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    refused = keyed_client.post("/v1/topics", json={"id": "x", "name": "X", "description": "x"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    assert keyed_client.get("/v1/topics").json()  # unchanged: still readable with the header below
    ok = {"X-CSRF-Token": csrf}
    assert keyed_client.get("/v1/alerts", headers=ok).status_code == 200
    me = keyed_client.get("/ui/api/me", headers=ok).json()
    assert me["keys_on"] and me["signed_in"] and "admin" in me["scopes"]
    assert keyed_client.get("/ui/api/me").status_code == 403  # the API part wants the header too
    assert keyed_client.delete("/ui/session").status_code == 204
    assert "nlp_session" not in keyed_client.cookies
    assert 'id="signin"' in keyed_client.get("/ui/overview").text


def test_revoking_the_key_ends_its_session(keyed_client: TestClient, new_key: Callable[..., str]) -> None:
    key = new_key("search", "alerts")
    csrf = _sign_in(keyed_client, key)
    assert keyed_client.get("/v1/alerts", headers={"X-CSRF-Token": csrf}).status_code == 200
    key_id = key.split("_")[1]
    admin = auth(keyed_client.admin_key)  # type: ignore[attr-defined]
    assert keyed_client.delete(f"/v1/keys/{key_id}", headers=admin).status_code in (200, 204)
    assert keyed_client.get("/v1/alerts", headers={"X-CSRF-Token": csrf}).status_code == 401


def test_search_only_key_sees_pages_but_no_actions_and_the_api_refuses_them(
    keyed_client: TestClient, new_key: Callable[..., str]
) -> None:
    csrf = _sign_in(keyed_client, new_key("search"))
    h = {"X-CSRF-Token": csrf}
    assert 'id="nav"' in keyed_client.get("/ui/alerts").text
    me = keyed_client.get("/ui/api/me", headers=h).json()
    assert me["scopes"] == ["search"]  # the pages offer acknowledge/assign/promote/edit only for their scopes
    overview = keyed_client.get("/ui/api/overview", headers=h).json()
    assert overview["needs"] == ["alerts"] and overview["topics"] == [] and overview["alerts"] == []
    refused = [
        keyed_client.post("/v1/alerts/alr_x/acknowledge", json={}, headers=h),
        keyed_client.post("/v1/alerts/alr_x/resolve", json={}, headers=h),
        keyed_client.post("/v1/models/sentiment/promote", json={"version": "v1"}, headers=h),
        keyed_client.post("/v1/models/sentiment/rollback", headers=h),
        keyed_client.post("/v1/topics", json={"id": "x", "name": "X", "description": "x"}, headers=h),
        keyed_client.post("/v1/topics/x/examples", json={"positive": [{"text": "a"}]}, headers=h),
        keyed_client.post("/v1/topics/suggestions/s/accept", json={}, headers=h),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert keyed_client.post("/v1/search", json={"query": "late parcel"}, headers=h).status_code == 200


def test_open_mode_serves_loopback_only(app_client: TestClient) -> None:
    me = app_client.get("/ui/api/me").json()
    assert not me["keys_on"] and me["signed_in"] and "admin" in me["scopes"]
    assert me["features"] == {"cases": True, "incidents": True}  # both APIs are there
    remote = TestClient(app_client.app, base_url="http://localhost", client=("10.1.2.3", 5000))
    assert remote.get("/ui/api/me").status_code == 403
    assert remote.get("/ui/overview").status_code == 403
