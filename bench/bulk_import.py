"""Bulk-import speed: a demo file uploaded to ``POST /v1/comments/import``, then the ``import`` job run.

    python bench/bulk_import.py [--rows 5000] [--format jsonl|csv] [--engine fake|real]
                                [--db sqlite|postgresql] [--pg-url URL] [--json OUT.json]

Writes ``--rows`` demo comments (``nlp-service demo generate``) as JSONL or CSV (attributes as columns),
uploads them through the app (in process, ``TestClient``), runs the job with the runner (the tests' fake
engine, or the real one: encoder, heads, topics) and times the upload and the job; then imports the same
file again (every row existing: no analysis). SQLite in a temporary directory, or PostgreSQL at ``--pg-url``
(its tables are emptied). Keys ``upload_s``, ``job_s``, ``rows_per_s``, ``again_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, write_json  # noqa: E402
from nlp_service.config import Settings  # noqa: E402
from nlp_service.db import upgrade  # noqa: E402
from nlp_service.demo.generator import DemoConfig, generate  # noqa: E402
from nlp_service.jobs import runner  # noqa: E402
from nlp_service.jobs import service as jobs  # noqa: E402
from nlp_service.main import create_app  # noqa: E402
from nlp_service.worker import JobContext  # noqa: E402
from tests.conftest import FakeEngine, local_client, truncate_all, wait_until_ready  # noqa: E402

MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def demo_file(rows: int, fmt: str) -> bytes:
    comments = list(generate(DemoConfig(n=rows)))[:rows]
    if fmt == "jsonl":
        return "".join(json.dumps(c) + "\n" for c in comments).encode()
    flat = [
        {**{k: v for k, v in c.items() if k != "attributes"}, **c.get("attributes", {})} for c in comments
    ]
    columns = sorted({k for c in flat for k in c}, key=lambda k: (k not in ("id", "text"), k))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue().encode()


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp())
    url = args.pg_url if args.db == "postgresql" else f"sqlite:///{tmp}/bench.db"
    upgrade(url, "heads")
    if args.db == "postgresql":
        truncate_all(url)
    settings = Settings(
        var_dir=tmp / "var",
        database_url=url,
        migrate_on_start=False,
        run_worker_in_process=False,
        rate_limit_per_s=0,
        search_save_interval_s=0,
    )
    if args.engine == "fake":
        engine: Any = FakeEngine()
    else:
        from nlp_service.inference.engine import Engine

        engine = Engine(settings)
        engine.warm_up()
    body = demo_file(args.rows, args.format)
    figures: dict[str, Any] = {"rows": args.rows, "bytes": len(body), "db": args.db, "engine": args.engine}
    with local_client(create_app(settings, engine=engine)) as client:
        wait_until_ready(client, 120)
        for attempt in ("first", "again"):
            t0 = time.perf_counter()
            r = client.post("/v1/comments/import", content=body, headers={"content-type": MEDIA[args.format]})
            assert r.status_code == 202, r.text
            t1 = time.perf_counter()
            state = client.app.state.nlp  # type: ignore[attr-defined]
            ctx = JobContext("background-jobs", settings, state.require_db(), "bench", asyncio.Event())
            ctx.state["resources"] = {"engine": engine}
            with ctx.session() as s:
                claimed = jobs.claim(
                    db_session=s, worker_id="bench", lease_s=600, max_attempts=1, kinds=["import"]
                )
            assert claimed is not None and runner.run_claimed(ctx, claimed) == "succeeded"
            t2 = time.perf_counter()
            result = client.get(f"/v1/jobs/{r.json()['id']}").json()["result"]
            expected = (
                {"created": args.rows, "existing": 0} if attempt == "first" else {"existing": args.rows}
            )
            assert all(result[k] == v for k, v in expected.items()), result
            if attempt == "first":
                figures.update(upload_s=round(t1 - t0, 2), job_s=round(t2 - t1, 1))
                figures["rows_per_s"] = round(args.rows / (t2 - t1), 1)
            else:
                figures["again_s"] = round(t2 - t1, 2)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--format", choices=sorted(MEDIA), default="jsonl")
    parser.add_argument("--engine", choices=["fake", "real"], default="fake")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/nlp_bench")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = run(args)
    print_table(
        f"bulk import ({args.format}, {args.engine} engine, {args.db})", sorted(figures.items()), ("", "")
    )
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
