"""Shared helpers of the benchmarks: realistic comment texts, a plain-text table, the ``--json`` file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
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
