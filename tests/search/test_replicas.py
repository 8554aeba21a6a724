"""Two API processes (replicas) on one database: a comment ingested through one is found by vector search on
the other within a few seconds, without a restart (each keeps its own vector index)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nlp_service.config import REPO_ROOT
from tests.servers import free_port

SYNC_INTERVAL_S = 0.5
FOUND_WITHIN_S = 10.0  # the stated bound: a few sync intervals plus a loaded CI machine's slack

# One replica: the real app (real DB, FAISS, spaCy, HTTP) on the tests' fake engine, settings from NLP_*.
SERVER = """
import sys, uvicorn
from tests.conftest import FakeEngine
from nlp_service.config import Settings
from nlp_service.main import create_app
uvicorn.run(create_app(Settings(), engine=FakeEngine()), host="127.0.0.1", port=int(sys.argv[1]),
            log_level="warning")
"""


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    client: httpx.Client
    log: Path

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"replica exited: {self.log.read_text()[-3000:]}")
            try:
                if self.client.get("/health").status_code == 200:
                    status = self.client.get("/v1/search/index").json()
                    if status.get("ready") and not status.get("building"):
                        return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"replica not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_replica(name: str, database_url: str, tmp_path: Path) -> Replica:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "NLP_DATABASE_URL": database_url,
        "NLP_VAR_DIR": str(tmp_path / name),  # each replica has its own vector index
        "NLP_MIGRATE_ON_START": "false",
        "NLP_RUN_WORKER_IN_PROCESS": "false",
        "NLP_RATE_LIMIT_PER_S": "0",
        "NLP_SEARCH_SAVE_INTERVAL_S": "0",
        "NLP_SEARCH_SYNC_INTERVAL_S": str(SYNC_INTERVAL_S),
        "NLP_LOG_FORMAT": "text",
    }
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Replica(proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30), log)


@pytest.fixture
def replicas(database_url: str, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    a = start_replica("a", database_url, tmp_path)
    b = start_replica("b", database_url, tmp_path)
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()


def comment(cid: str, text: str) -> dict[str, Any]:
    return {"id": cid, "text": text, "created_at": "2024-03-11T08:00:00+00:00", "source": "survey"}


def ingest(replica: Replica, items: list[dict[str, Any]]) -> None:
    r = replica.client.post("/v1/comments", json={"comments": items})
    assert r.status_code == 201, r.text


def found_within(replica: Replica, item: dict[str, Any], timeout_s: float) -> float | None:
    """Seconds until a vector search on ``replica`` returns ``item`` first, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        r = replica.client.post("/v1/search", json={"query": item["text"], "k": 1})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        if results and results[0]["id"] == item["id"]:
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


def test_a_comment_ingested_on_one_replica_is_found_on_the_other(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    ingest(a, [comment(f"warm{i}", f"the delivery number {i} was late") for i in range(5)])
    first = comment("on-a", "the espresso machine descaling light keeps blinking")
    ingest(a, [first])
    took = found_within(b, first, FOUND_WITHIN_S)
    assert took is not None, (
        f"not found on B within {FOUND_WITHIN_S}s; B's index: {b.client.get('/v1/search/index').json()}"
    )
    # And the other way round, for a batch.
    batch = [comment(f"on-b{i}", f"warranty claim {i} for a cracked kettle lid") for i in range(20)]
    ingest(b, batch)
    for item in (batch[0], batch[-1]):
        assert found_within(a, item, FOUND_WITHIN_S) is not None, item
    assert (
        a.client.get("/v1/search/index").json()["size"]
        == b.client.get("/v1/search/index").json()["size"]
        == 26
    )
