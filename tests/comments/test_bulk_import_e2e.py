"""Bulk import end to end on a real uvicorn server (the app on the tests' fake engine, its in-process worker
sharing that engine): a demo file streamed to ``POST /v1/comments/import``, the job followed at
``GET /v1/jobs/{id}`` to its result, and the imported comments found by vector search once the index's sync
loop has picked them up (the import job does not touch the API's index)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from nlp_service.demo.generator import DemoConfig, write_jsonl
from tests.servers import running_server

pytestmark = pytest.mark.slow  # a server process per database (~20 s each here)


def wait_for(fn: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_import_through_a_real_server(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "demo.jsonl"
    n = write_jsonl(DemoConfig(n=300, seed=5), path)
    env = {
        "NLP_DATABASE_URL": database_url,
        "NLP_VAR_DIR": str(tmp_path / "var"),
        "NLP_MIGRATE_ON_START": "false",
        "NLP_RUN_WORKER_IN_PROCESS": "true",
        "NLP_JOB_POLL_S": "0.2",
        "NLP_JOB_IMPORT_SLICE_ROWS": "64",
        "NLP_SEARCH_SYNC_INTERVAL_S": "0.5",
        "NLP_SEARCH_SAVE_INTERVAL_S": "0",
    }
    with running_server(env, tmp_path / "server.log") as url, httpx.Client(base_url=url, timeout=30) as http:

        def chunks() -> Any:  # streamed (chunked, no Content-Length)
            with path.open("rb") as f:
                while piece := f.read(16 * 1024):
                    yield piece

        r = http.post(
            "/v1/comments/import",
            content=chunks(),
            params={"filename": path.name},
            headers={"content-type": "application/x-ndjson"},
        )
        assert r.status_code == 202, r.text
        job_url = r.headers["location"]

        def finished() -> dict[str, Any] | None:
            job = http.get(job_url).json()
            return job if job["status"] in ("succeeded", "failed", "cancelled") else None

        job = wait_for(finished, 120, "the import job did not finish")
        assert job["status"] == "succeeded", job
        assert job["progress"] == {"done": n, "total": n, "fraction": 1.0, "slices": 5}
        result = job["result"]
        assert (result["rows"], result["created"], result["existing"], result["invalid"]) == (n, n, 0, 0)

        last = json.loads(path.read_text().splitlines()[-1])
        stored = http.get(f"/v1/comments/{last['id']}").json()
        assert stored["text"] == last["text"] and stored["attributes"] == last["attributes"]

        def found() -> bool:
            hits = http.post("/v1/search", json={"query": last["text"], "k": 5}).json()["results"]
            return bool(hits) and hits[0]["text"] == last["text"]  # demo texts repeat: any of its copies

        wait_for(found, 30, "the imported comment never showed up in vector search")
