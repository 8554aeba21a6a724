"""Re-tag speed: stored comments re-tagged to a newly activated taxonomy version from their stored embeddings.

    python bench/retag.py [--comments 100000] [--db sqlite|postgresql|both] [--pg-url URL] [--json OUT.json]

Stores ``--comments`` synthetic comments (``topics.synthetic``: clustered 384-d embeddings, every fifth with
two sentence embeddings, over 90 days, three segment fields) tagged by version A (8 topics) straight into a
fresh database (SQLite in a temporary directory; PostgreSQL at ``--pg-url``, whose tables are emptied),
queues a re-tag to version B (three topics moved, two added, one of them search-defined with a sentiment
filter) and times the worker job ``topic-retag`` until it is done; then checks that the counts equal a
recount from scratch. Key ``retag_<db>_s`` (wall clock, bar < 60 s for 100,000 comments).
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
from nlp_service.config import Settings  # noqa: E402
from nlp_service.db import make_sessionmaker, session_scope  # noqa: E402
from nlp_service.topics import jobs, retag  # noqa: E402
from nlp_service.topics import synthetic as syn  # noqa: E402
from nlp_service.topics.tables import RetagJob  # noqa: E402
from nlp_service.topics.taxonomy import Taxonomy, Topic, TopicQuery  # noqa: E402
from nlp_service.worker import JobContext  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
A = {f"topic_{i}": i for i in range(8)}
B = {**A, "topic_1": 9, "topic_2": 1, "topic_3": 2, "topic_8": 8, "topic_9": 3}


def taxonomy_b() -> Taxonomy:
    tax = syn.taxonomy(B)
    angry = Topic(
        "angry_10", "Angry", "angry", query=TopicQuery("cluster 10", (("sentiment", ("negative",)),))
    )
    return Taxonomy((*tax.topics, angry), tax.name, tax.version, tax.default_threshold)


def run(url: str, n: int, batch: int, check: bool) -> dict[str, Any]:
    """Store, re-tag, check; returns the figures of one database."""
    engine = fresh_database(url)
    db = make_sessionmaker(engine)
    c = syn.centers(12, seed=0)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 12, n)
    x = syn.clustered(labels, c, seed=2)
    sentences = [
        np.stack([x[i], syn.clustered([int(labels[i] + 1) % 12], c, seed=i)[0]]) if i % 5 == 0 else None
        for i in range(n)
    ]
    t0 = time.perf_counter()
    with session_scope(db) as s:
        _, model_a = syn.store_version(db_session=s, tax=syn.taxonomy(A), c=c)
        syn.store_comments(
            db_session=s,
            embeddings=x,
            model=model_a,
            start=START,
            span=timedelta(days=90),
            sentences=sentences,
        )
        version_b, _ = syn.store_version(db_session=s, tax=taxonomy_b(), c=c)
        job_id = retag.submit(db_session=s, version_id=version_b.id).id
    store_s = time.perf_counter() - t0

    settings = Settings(retag_batch_size=batch)
    ctx = JobContext("topic-retag", settings, db, "bench", asyncio.Event())
    t0, c0 = time.perf_counter(), time.process_time()
    jobs.run_retag_jobs(ctx)
    retag_s, retag_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    with db() as s:
        job = s.get(RetagJob, job_id)
        assert job is not None
        status, done = job.status, job.done
        consistent = syn.stored_counts(db_session=s) == syn.recount(db_session=s) if check else None
    engine.dispose()
    if status != "succeeded" or done != n:
        raise SystemExit(f"re-tag job ended {status} with {done}/{n} comments: {job.error}")
    return {
        "comments": n,
        "store_s": round(store_s, 2),
        "job_s": round(retag_s, 2),
        "job_cpu_s": round(retag_cpu_s, 2),
        "counts_consistent": consistent,
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Run the benchmark and print a table."""
    return stored_job_main(
        name="retag",
        label="re-tag",
        run=run,
        default_batch=Settings().retag_batch_size,
        argv=argv,
        doc=__doc__ or "",
    )


if __name__ == "__main__":
    main()
