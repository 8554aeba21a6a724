"""``/docs`` and ``/redoc`` render offline: every asset their HTML names is served by the service itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

EXPECTED_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


class _Assets(HTMLParser):
    """Collects ``src``, ``href`` and ``spec-url`` (ReDoc) attributes and the text of inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def page_assets(html: str) -> list[str]:
    """Every URL the page loads: tag attributes, and the quoted paths and URLs of its inline scripts."""
    parser = _Assets()
    parser.feed(html)
    inline = [
        m.group(2)
        for script in parser.scripts
        for m in re.finditer(r"""(['"])((?:https?:)?//[^'"]+|/[^'"\s]+)\1""", script)
    ]
    return parser.urls + inline


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_same_origin_assets(app_client: TestClient, page: str) -> None:
    response = app_client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn." not in html and "fonts.googleapis" not in html and "https://" not in html
    assets = page_assets(html)
    assert any(url.endswith(".js") for url in assets), assets
    base = str(app_client.base_url) + page
    checked = 0
    for url in assets:
        absolute = urljoin(base, url)
        assert urlsplit(absolute).netloc == urlsplit(base).netloc, f"{page} loads {url} from elsewhere"
        path = urlsplit(absolute).path
        suffix = next((s for s in EXPECTED_TYPES if path.endswith(s)), None)
        if suffix is None:
            continue  # e.g. Swagger UI's OAuth2 redirect page, only opened for OAuth flows
        asset = app_client.get(path)
        assert asset.status_code == 200, f"{path}: {asset.status_code}"
        assert EXPECTED_TYPES[suffix] in asset.headers["content-type"], (path, asset.headers["content-type"])
        assert len(asset.content) > 0
        checked += 1
    assert checked >= (4 if page == "/docs" else 3)  # js, css, favicon, openapi.json (redoc: no css)


def test_docs_oauth2_redirect_page_is_served(app_client: TestClient) -> None:
    response = app_client.get("/docs/oauth2-redirect")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
