"""Browser-test harness: the system Chromium through Playwright, and a real server on demo data.

Playwright's own browser builds are not used (they cannot be downloaded here): ``chromium_path`` finds the
distribution's Chromium, and tests skip with a message when there is none (or Playwright is missing).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from nlp_service.config import REPO_ROOT
from nlp_service.db import make_engine, make_sessionmaker, session_scope, upgrade
from tests.search.test_replicas import free_port

SCREENSHOTS = REPO_ROOT / "var" / "screenshots"

# The app as served (the real encoder and heads), or with ``fake_engine`` on the tests' fake engine (hashed
# embeddings, keyword topics: for bulk benchmarks); everything else is real (uvicorn, SQLite, FAISS, worker).
SERVER = """
import sys, uvicorn
from nlp_service.config import Settings
from nlp_service.main import create_app
engine = None
if sys.argv[2] == "fake":
    from tests.conftest import FakeEngine
    engine = FakeEngine()
app = create_app(Settings(), engine=engine)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return os.environ.get("NLP_CHROMIUM") or None


def require_browser() -> str:
    """The Chromium executable, or skip the calling test with the reason."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    path = chromium_path()
    if path is None:
        pytest.skip("no system Chromium (apt-get install chromium): browser tests skipped")
    return path


def make_key(url: str, scopes: list[str], name: str) -> str:
    from nlp_service.auth import service

    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            return service.create(db_session=session, name=name, scopes=scopes)[1]
    finally:
        engine.dispose()


@dataclass
class Server:
    url: str
    db_url: str
    log: Path
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=120)


@contextmanager
def running_server(
    tmp: Path,
    env_extra: dict[str, str] | None = None,
    prepare: Callable[[str], None] | None = None,
    fake_engine: bool = False,
) -> Iterator[Server]:
    """A uvicorn subprocess on a fresh SQLite database with keys on (``admin``: every scope, ``search``);
    ``prepare(db_url)`` runs on the migrated database before the server starts (bulk data)."""
    db_url = f"sqlite:///{tmp / 'ui.db'}"
    upgrade(db_url, "heads")
    if prepare is not None:
        prepare(db_url)
    keys = {
        "admin": make_key(db_url, ["all"], "admin"),
        "search": make_key(db_url, ["search"], "search only"),
    }
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "NLP_DATABASE_URL": db_url,
        "NLP_VAR_DIR": str(tmp / "var"),
        "NLP_RUN_WORKER_IN_PROCESS": "true",
        "NLP_DETECTION_INTERVAL_S": "86400",
        "NLP_RATE_LIMIT_PER_S": "0",
        "NLP_SEARCH_SAVE_INTERVAL_S": "0",
        "NLP_LOG_FORMAT": "text",
        **(env_extra or {}),
    }
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port), "fake" if fake_engine else "real"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(url=f"http://127.0.0.1:{port}", db_url=db_url, log=log, keys=keys)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


class PageProblems:
    """Console errors, page errors, failed requests and HTTP errors seen by a page (the tests fail on any)."""

    def __init__(self, page: Any) -> None:
        self.items: list[str] = []
        page.on(
            "console",
            lambda m: self.items.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.items.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.items.append(f"request failed: {r.url} {r.failure}"))
        page.on(
            "response", lambda r: self.items.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
        )

    def take(self) -> list[str]:
        out, self.items = self.items, []
        return out


def wait_ready(page: Any, name: str, timeout_ms: float = 30_000) -> int:
    """Wait until the shell marks page ``name`` drawn with its data; returns its render time in ms."""
    page.wait_for_selector(f'body[data-ready="{name}"]', timeout=timeout_ms)
    return int(page.eval_on_selector("body", "b => b.dataset.renderMs"))


def ready_at_ms(page: Any) -> int:
    """Milliseconds from the navigation's start until the page was drawn with its data."""
    return int(page.eval_on_selector("body", "b => b.dataset.readyAtMs"))


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
