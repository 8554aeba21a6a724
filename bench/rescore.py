"""Re-scoring speed: stored comments re-scored by the active heads from their stored features (a job).

    python bench/rescore.py [--comments 100000] [--db sqlite|postgresql|both] [--pg-url URL] [--json OUT.json]

Stores ``--comments`` synthetic comments (``topics.synthetic``: 384-d embeddings, tagged, over 90 days, three
segment fields, random sentiment) with stored head features (float16 pooled layers 1-6, the shipped heads'
input) straight into a fresh database (SQLite in a temporary directory; PostgreSQL at ``--pg-url``, whose
tables are emptied), queues a ``rescore`` job and times the worker job ``background-jobs`` running it with
the shipped heads (``models/``) until it is done; then checks that the topic counts equal a recount from
scratch. Key ``rescore_<db>_s`` (wall clock, bar < 60 s for 100,000 comments).
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fresh_database, stored_job_main  # noqa: E402
from nlp_service.comments.rescore import RescoreParams  # noqa: E402
from nlp_service.config import REPO_ROOT, Settings  # noqa: E402
from nlp_service.db import make_sessionmaker, session_scope  # noqa: E402
from nlp_service.inference.engine import HEAD_TASKS, feature_spec  # noqa: E402
from nlp_service.inference.registry import ModelRegistry  # noqa: E402
from nlp_service.jobs import jobs as worker_job  # noqa: E402
from nlp_service.jobs import service  # noqa: E402
from nlp_service.jobs.tables import Job  # noqa: E402
from nlp_service.topics import synthetic as syn  # noqa: E402
from nlp_service.worker import JobContext  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
MODELS = REPO_ROOT / "models"


def run(url: str, n: int, batch: int, check: bool) -> dict[str, Any]:
    """Store, re-score, check; returns the figures of one database."""
    engine = fresh_database(url)
    db = make_sessionmaker(engine)
    registry = ModelRegistry(MODELS)
    heads = {task: registry.load_active(task) for task in HEAD_TASKS}
    sha = next(iter(heads.values())).encoder_sha256
    layers = tuple(sorted({layer for h in heads.values() for layer in h.features.layers}))
    c = syn.centers(8, seed=0)
    x = syn.clustered(np.random.default_rng(1).integers(0, 8, n), c, seed=2)
    t0 = time.perf_counter()
    with session_scope(db) as s:
        _, model = syn.store_version(db_session=s, tax=syn.taxonomy({f"t{i}": i for i in range(8)}), c=c)
        row_ids = syn.store_comments(
            db_session=s, embeddings=x, model=model, start=START, span=timedelta(days=90)
        )
    for start in range(0, n, 20_000):  # features in chunks: 100,000 x 6 x 384 float16 is 460 MB
        with session_scope(db) as s:
            syn.store_features(
                db_session=s,
                row_ids=row_ids[start : start + 20_000],
                spec=feature_spec(sha, layers),
                shape=(len(layers), 384),
                seed=start,
            )
    with session_scope(db) as s:
        job_id = service.submit(db_session=s, kind="rescore", params={"batch": batch}).id
    store_s = time.perf_counter() - t0

    ctx = JobContext("background-jobs", Settings(models_dir=MODELS), db, "bench", asyncio.Event())
    t0, c0 = time.perf_counter(), time.process_time()
    worker_job.run_background_jobs(ctx)
    rescore_s, rescore_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    with db() as s:
        job = s.get(Job, job_id)
        assert job is not None
        status, result, error = job.status, job.result or {}, job.error
        consistent = syn.stored_counts(db_session=s) == syn.recount(db_session=s) if check else None
    engine.dispose()
    if status != "succeeded" or result.get("rescored") != n:
        raise SystemExit(f"rescore job ended {status}: {result} {error}")
    return {
        "comments": n,
        "store_s": round(store_s, 2),
        "job_s": round(rescore_s, 2),
        "job_cpu_s": round(rescore_cpu_s, 2),
        "counts_consistent": consistent,
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Run the benchmark and print a table."""
    return stored_job_main(
        name="rescore",
        label="re-score",
        run=run,
        default_batch=RescoreParams().batch,
        argv=argv,
        doc=__doc__ or "",
    )


if __name__ == "__main__":
    main()
