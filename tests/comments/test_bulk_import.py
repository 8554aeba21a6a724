"""Bulk import (``POST /v1/comments/import`` and the ``import`` job) on SQLite and PostgreSQL: CSV, JSONL and
Parquet end to end, progress and resume, bad rows reported, idempotent re-import, conflicts, 413, 422, 415,
cancel of a queued import. The job is run by the runner directly, on the fake engine."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nlp_service.config import Settings
from nlp_service.jobs import files, runner
from nlp_service.jobs import service as jobs
from nlp_service.worker import JobContext

T0 = datetime(2024, 3, 11, 8, 0, tzinfo=UTC)
COLUMNS = ["id", "text", "created_at", "source", "region", "nps", "plan"]


def row(i: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"imp-{i}",
        "text": f"The delivery number {i} was late, the parcel arrived damaged",
        "created_at": (T0 + timedelta(hours=i)).isoformat(),
        "source": "survey",
        "region": "eu-west" if i % 2 else "us-east",
        "nps": i % 11,
        "plan": "pro" if i % 3 == 0 else "basic",
    }
    body.update(extra)
    return body


def csv_bytes(rows: list[dict[str, Any]], columns: list[str] = COLUMNS) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r[c] for c in columns])
    return out.getvalue().encode("utf-8")


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture
def settings(app_settings: Settings) -> Settings:
    return app_settings.model_copy(update={"run_worker_in_process": False, "job_import_slice_rows": 4})


@pytest.fixture
def client(
    settings: Settings, start_app: Callable[[Settings], AbstractContextManager[TestClient]]
) -> Iterator[TestClient]:
    with start_app(settings) as c:
        yield c


def context(client: TestClient, fake_engine: Any, worker: str = "w1") -> JobContext:
    state = client.app.state.nlp  # type: ignore[attr-defined]
    ctx = JobContext("background-jobs", state.settings, state.require_db(), worker, asyncio.Event())
    ctx.state["resources"] = {"engine": fake_engine}
    return ctx


def run_job(ctx: JobContext) -> str:
    """Claim the next job and run it; its outcome ('succeeded', 'released', ...)."""
    with ctx.session() as s:
        claimed = jobs.claim(
            db_session=s, worker_id=ctx.worker_id, lease_s=60, max_attempts=5, kinds=["import"]
        )
    assert claimed is not None
    return runner.run_claimed(ctx, claimed)


def submit(client: TestClient, body: bytes, content_type: str, **params: str) -> dict[str, Any]:
    r = client.post(
        "/v1/comments/import", content=body, headers={"content-type": content_type}, params=params
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["kind"] == "import" and job["status"] == "queued"
    return job


def get_job(client: TestClient, job_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_csv_import_progress_resume_and_bad_rows(
    client: TestClient, fake_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "CHUNK_BYTES", 64)  # rows straddle the stored chunks
    rows = [row(i) for i in range(10)]
    rows[2]["text"] = 'Two lines,\n"quoted", and a comma'  # one record over two lines
    rows[4]["created_at"] = "yesterday"  # invalid: not a timestamp
    rows[7]["nps"] = "eleven"  # invalid: not an integer
    rows[8]["region"] = None  # an empty optional cell: null
    body = b"\xef\xbb\xbf" + csv_bytes(rows)
    job = submit(client, body, "text/csv; charset=utf-8", filename="survey.csv")
    assert job["params"]["format"] == "csv" and job["params"]["filename"] == "survey.csv"
    assert job["params"]["columns"] == COLUMNS and job["params"]["bytes"] == len(body)
    assert job["progress"]["total"] == 11  # counted from line breaks (the quoted one too): an estimate

    ctx = context(client, fake_engine)
    analyse = fake_engine.analyze

    def analyze_then_stop(texts: list[str]) -> Any:
        ctx.stopping.set()  # a graceful stop after this slice
        return analyse(texts)

    fake_engine.analyze = analyze_then_stop
    assert run_job(ctx) == "released"
    fake_engine.analyze = analyse
    mid = get_job(client, job["id"])
    assert mid["status"] == "queued"
    assert mid["progress"]["done"] == 4 and mid["progress"]["slices"] == 1
    assert 0 < mid["progress"]["fraction"] < 1
    assert client.get("/v1/comments/imp-3").status_code == 200
    assert client.get("/v1/comments/imp-5").status_code == 404

    ctx.stopping.clear()
    assert run_job(ctx) == "succeeded"  # resumed after the committed slice
    done = get_job(client, job["id"])
    assert done["status"] == "succeeded"
    assert done["progress"] == {"done": 10, "total": 10, "fraction": 1.0, "slices": 3}
    result = done["result"]
    assert {k: result[k] for k in ("rows", "created", "existing", "conflicts", "invalid")} == {
        "rows": 10,
        "created": 8,
        "existing": 0,
        "conflicts": 0,
        "invalid": 2,
    }
    errors = {(e["row"], e["field"]): e for e in result["errors"]}
    assert set(errors) == {(5, "created_at"), (8, "nps")}
    assert errors[(5, "created_at")]["id"] == "imp-4"
    assert errors[(5, "created_at")]["line"] == 7  # header, BOM-led, on line 1; row 3 spans lines 4-5
    assert errors[(8, "nps")]["line"] == 10

    stored = client.get("/v1/comments/imp-2").json()
    assert stored["text"] == rows[2]["text"]
    assert stored["attributes"] == {"plan": "basic"} and stored["nps"] == 2
    assert client.get("/v1/comments/imp-8").json()["region"] is None
    assert client.get("/v1/comments/imp-4").status_code == 404


def test_jsonl_reimport_is_all_existing_and_conflicts_are_rows(client: TestClient, fake_engine: Any) -> None:
    rows = [row(i) for i in range(6)]
    rows[1]["attributes"] = {"plan": "enterprise", "team": "a"}  # explicit attributes win over the column
    body = jsonl_bytes(rows[:3]) + b"\n  \n" + jsonl_bytes(rows[3:])  # blank lines are skipped
    ctx = context(client, fake_engine)
    first = submit(client, body, "application/x-ndjson")
    assert run_job(ctx) == "succeeded"
    result = get_job(client, first["id"])["result"]
    assert (result["rows"], result["created"], result["existing"], result["invalid"]) == (6, 6, 0, 0)
    assert client.get("/v1/comments/imp-1").json()["attributes"] == {"plan": "enterprise", "team": "a"}
    analysed = sum(fake_engine.calls)

    second = submit(client, body, "application/jsonl")
    assert run_job(ctx) == "succeeded"
    result = get_job(client, second["id"])["result"]
    assert (result["rows"], result["created"], result["existing"], result["errors"]) == (6, 0, 6, [])
    assert sum(fake_engine.calls) == analysed  # nothing analysed again

    changed = [row(0, text="A different text for a known id"), row(10), row(10), row(11), row(11, nps=1)]
    nul = jsonl_bytes([row(12, text="a NUL \u0000 (PostgreSQL text cannot hold it)")])
    third = submit(
        client, jsonl_bytes(changed) + b"[1, 2]\n" + nul, "application/octet-stream", format="jsonl"
    )
    assert run_job(ctx) == "succeeded"
    result = get_job(client, third["id"])["result"]
    counts = {k: result[k] for k in ("rows", "created", "existing", "conflicts", "invalid")}
    assert counts == {"rows": 7, "created": 2, "existing": 1, "conflicts": 2, "invalid": 2}
    assert [(e["row"], e["type"], e["field"]) for e in result["errors"]] == [
        (1, "id_conflict", "id"),
        (5, "id_conflict", "id"),
        (6, "invalid_row", "row"),
        (7, "invalid_field", "text"),
    ]
    assert result["errors"][0]["line"] == 1 and result["errors"][0]["id"] == "imp-0"
    assert client.get("/v1/comments/imp-0").json()["text"] == rows[0]["text"]  # unchanged


def test_parquet_import(client: TestClient, fake_engine: Any) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 7
    table = pa.table(
        {
            "id": [f"pq-{i}" for i in range(n)],
            "text": [f"Great support, thanks ({i})" for i in range(n)],
            "created_at": pa.array(
                [T0 + timedelta(minutes=i) for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "source": ["review"] * n,
            "nps": pa.array([None if i == 2 else i for i in range(n)], pa.int64()),
            "csat": [4.5] * n,
            "store": [f"s{i % 2}" for i in range(n)],
            "attributes": pa.array([[("plan", "pro")]] * n, pa.map_(pa.string(), pa.string())),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=3)  # 3 row groups; slices of 4 rows cross them
    job = submit(client, out.getvalue(), "application/vnd.apache.parquet")
    assert job["progress"]["total"] == n
    assert run_job(context(client, fake_engine)) == "succeeded"
    done = get_job(client, job["id"])
    assert done["result"]["created"] == n and done["result"]["invalid"] == 0
    assert done["progress"]["done"] == n
    stored = client.get("/v1/comments/pq-2").json()
    assert stored["nps"] is None and stored["csat"] == 4.5
    assert stored["attributes"] == {"store": "s0", "plan": "pro"}
    assert stored["created_at"].startswith("2024-03-11T08:02:00")


def test_bad_files_are_refused(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "/v1/comments/import"
    r = client.post(
        url, content=csv_bytes([row(1)], ["id", "text", "created_at"]), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [
        {
            "field": "source",
            "message": "the header has no 'source' column (required: id, text, created_at, source)",
            "row": 0,
        }
    ]
    r = client.post(url, content=b"id,text,text,created_at,source\n", headers={"content-type": "text/csv"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "text"
    first = json.dumps({"id": "x", "created_at": T0.isoformat(), "source": "s"}).encode()
    r = client.post(url, content=first + b"\n", headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 422 and r.json()["detail"][0] == {
        "field": "text",
        "message": "row 1 has no 'text' column (required: id, text, created_at, source)",
        "row": 1,
    }
    r = client.post(url, content=b"not json\n", headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 422 and r.json()["detail"][0]["row"] == 1
    r = client.post(url, content=b"", headers={"content-type": "text/csv"})
    assert r.status_code == 422
    r = client.post(url, content=b"PAR1 but not really", params={"format": "parquet"})
    assert r.status_code == 422 and "not a Parquet file" in r.json()["error"]
    r = client.post(url, content=b"id,text\n", headers={"content-type": "application/json"})
    assert r.status_code == 415
    r = client.post(url, content=b"x", params={"format": "xml"})
    assert r.status_code == 422
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # pyarrow not installed
    r = client.post(url, content=b"PAR1", params={"format": "parquet"})
    assert r.status_code == 415 and "nlp-service[parquet]" in r.json()["error"]
    assert client.get("/v1/jobs", params={"kind": "import"}).json()["jobs"] == []


def test_upload_limit_is_its_own(
    settings: Settings, start_app: Callable[[Settings], AbstractContextManager[TestClient]]
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 500, "job_upload_max_bytes": 3000})
    with start_app(small) as client:
        body = csv_bytes([row(i) for i in range(30)])
        assert 500 < len(body[:2000])
        r = client.post(
            "/v1/comments/import",
            content=body[:2000].rsplit(b"\n", 1)[0] + b"\n",
            headers={"content-type": "text/csv"},
        )
        assert r.status_code == 202, r.text  # above NLP_MAX_BODY_BYTES, within NLP_JOB_UPLOAD_MAX_BYTES
        assert len(body) > 3000
        r = client.post("/v1/comments/import", content=body, headers={"content-type": "text/csv"})
        assert r.status_code == 413, r.text

        def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams in
            for start in range(0, len(body), 500):
                yield body[start : start + 500]

        r = client.post("/v1/comments/import", content=chunks(), headers={"content-type": "text/csv"})
        assert r.status_code == 413, r.text
        r = client.post("/v1/comments", content=b"x" * 1000, headers={"content-type": "application/json"})
        assert r.status_code == 413  # the other routes keep NLP_MAX_BODY_BYTES
        assert len(client.get("/v1/jobs", params={"kind": "import"}).json()["jobs"]) == 1


def test_cancel_a_queued_import(client: TestClient, fake_engine: Any) -> None:
    job = submit(client, csv_bytes([row(1), row(2)]), "text/csv")
    r = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    ctx = context(client, fake_engine)
    with ctx.session() as s:
        assert jobs.claim(db_session=s, worker_id="w1", lease_s=60, max_attempts=5, kinds=["import"]) is None
    assert client.get("/v1/comments/imp-1").status_code == 404
    assert fake_engine.calls == []


def test_a_failed_slice_is_redone_once(
    client: TestClient, fake_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice whose write fails (a crash before its commit) is redone by the next claim: every row is
    stored once and counted once."""
    from nlp_service.comments import service

    rows = [row(i) for i in range(10)]
    job = submit(client, jsonl_bytes(rows) + b'{"id": "bad"}\n', "application/x-ndjson")
    create_many = service.create_many
    calls = {"n": 0}

    def fail_second(**kwargs: Any) -> Any:
        calls["n"] += 1
        created = create_many(**kwargs)  # written, then lost with the transaction's rollback
        if calls["n"] == 2:
            raise RuntimeError("worker died before the commit")
        return created

    monkeypatch.setattr(service, "create_many", fail_second)
    ctx = context(client, fake_engine)
    assert run_job(ctx) == "retry"
    mid = get_job(client, job["id"])
    assert (mid["status"], mid["progress"]["done"], mid["progress"]["slices"]) == ("queued", 4, 1)
    assert "worker died" in mid["error"]
    assert run_job(context(client, fake_engine, worker="w2")) == "succeeded"
    done = get_job(client, job["id"])
    result = done["result"]
    counts = {k: result[k] for k in ("rows", "created", "existing", "conflicts", "invalid")}
    assert counts == {"rows": 11, "created": 10, "existing": 0, "conflicts": 0, "invalid": 1}
    assert done["attempts"] == 2 and done["progress"]["slices"] == 3
    assert len(client.get("/v1/comments", params={"limit": 50}).json()["comments"]) == 10


def test_job_file_reader_reads_across_chunks_and_caches_one(
    db_sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "CHUNK_BYTES", 10)
    data = bytes(range(256)) * 3
    with db_sessions() as s:
        job = jobs.submit(db_session=s, kind="import", params={})
        assert files.store(db_session=s, job_id=job.id, source=io.BytesIO(data)) == len(data)
        s.commit()
        job_id = job.id
    cache: dict[str, Any] = {}
    for start, n in ((0, 5), (7, 30), (95, 10), (760, 100), (768, 5)):
        with db_sessions() as s:
            reader = io.BufferedReader(
                files.JobFileReader(db_session=s, job_id=job_id, size=len(data), cache=cache), buffer_size=8
            )
            reader.seek(start)
            assert reader.read(n) == data[start : start + n], (start, n)
    with db_sessions() as s:  # the cached chunk is not loaded again
        monkeypatch.setattr(s, "scalar", lambda *a, **k: pytest.fail("loaded again"))
        reader = io.BufferedReader(
            files.JobFileReader(db_session=s, job_id=job_id, size=len(data), cache=cache)
        )
        reader.seek(761)
        assert reader.read(3) == data[761:764]


def test_cancel_a_running_import_keeps_committed_slices(client: TestClient, fake_engine: Any) -> None:
    job = submit(client, csv_bytes([row(i) for i in range(10)]), "text/csv")
    analyse = fake_engine.analyze

    def analyze_then_cancel(texts: list[str]) -> Any:
        if len(fake_engine.calls) == 1:  # during the second slice
            assert client.post(f"/v1/jobs/{job['id']}/cancel").json()["cancel_requested"] is True
        return analyse(texts)

    fake_engine.analyze = analyze_then_cancel
    assert run_job(context(client, fake_engine)) == "cancelled"
    done = get_job(client, job["id"])
    assert done["status"] == "cancelled" and done["progress"]["done"] == 4
    assert client.get("/v1/comments/imp-3").status_code == 200  # the first slice stays
    assert client.get("/v1/comments/imp-4").status_code == 404  # the second was not written
