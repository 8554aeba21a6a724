"""Shared helpers of the benchmarks: realistic comment texts, a plain-text table, the ``--json`` file."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


def realistic_comments(n: int, *, seed: int = 0) -> list[str]:
    """``n`` customer comments of 5-60 words from the seeded demo generator."""
    from nlp_service.demo.generator import DemoConfig, generate

    texts = []
    for comment in generate(DemoConfig(n=n * 2, seed=seed)):
        words = comment["text"].split()
        if 5 <= len(words) <= 60:
            texts.append(comment["text"])
        if len(texts) == n:
            break
    return texts


def print_table(
    title: str, rows: Iterable[Sequence[object]], header: Sequence[str] = ("metric", "value", "bar", "")
) -> None:
    """Print rows as an aligned text table."""
    cells = [tuple(str(c) for c in row) for row in rows]
    head = tuple(str(h) for h in header)
    widths = [max(len(r[i]) for r in [head, *cells] if i < len(r)) for i in range(len(head))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)))


def write_json(path: Path | None, figures: object) -> None:
    """Write ``figures`` to ``path`` (a benchmark's ``--json``), if given."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n")


def fresh_database(url: str) -> Any:
    """Migrate ``url`` and empty every application table (PostgreSQL); returns its SQLAlchemy engine."""
    from sqlalchemy import inspect, text

    from nlp_service.db import make_engine, upgrade

    upgrade(url, "heads")
    engine = make_engine(url)
    if not url.startswith("sqlite"):
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE TABLE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    return engine


RunJob = Callable[[str, int, int, bool], dict[str, Any]]


def stored_job_main(
    *, name: str, label: str, run: RunJob, default_batch: int, argv: list[str] | None, doc: str
) -> dict[str, dict[str, Any]]:
    """The command line of a benchmark timing one background job over stored comments, per database.

    ``run(url, comments, batch, check)`` stores the comments, runs the job and returns its figures
    (``comments``, ``store_s``, ``job_s``, ``job_cpu_s``, ``counts_consistent``); the bar is 60 s per 100,000
    comments. Prints the table and writes ``<name>_<db>_s`` keys to ``--json``.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--pg-url", default=None, help="PostgreSQL database to use (its tables are emptied)")
    parser.add_argument("--batch", type=int, default=default_batch, help="comments per slice")
    parser.add_argument("--no-check", action="store_true", help="skip the recount check")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.db != "sqlite" and not args.pg_url:
        parser.error("--pg-url is required for PostgreSQL")

    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"sqlite": f"sqlite:///{Path(tmp) / f'{name}.db'}", "postgresql": args.pg_url}
        for db in ("sqlite", "postgresql"):
            if args.db in (db, "both"):
                f = run(targets[db], args.comments, args.batch, not args.no_check)
                figures[db] = f | {"comments_per_s": round(f["comments"] / f["job_s"])}
    bar = 60.0 * args.comments / 100_000
    rows = []
    for db, f in figures.items():
        ok = "ok" if f["job_s"] < bar else "OVER"
        rows.append((f"{db}: {label} {f['comments']:,} comments (s)", f["job_s"], f"< {bar:.0f}", ok))
        rows.append((f"{db}: {label} CPU (s)", f["job_cpu_s"], "", ""))
        rows.append((f"{db}: comments/s", f["comments_per_s"], "", ""))
        rows.append((f"{db}: storing them first (s)", f["store_s"], "", ""))
        rows.append((f"{db}: counts equal a recount", f["counts_consistent"], "", ""))
    print_table(f"{label} (slice {args.batch})", rows)
    write_json(args.json, {f"{name}_{db}_s": f["job_s"] for db, f in figures.items()} | {"figures": figures})
    return figures
