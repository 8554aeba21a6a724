"""``nlp-service db upgrade`` migrates the configured database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from nlp_service.cli import main


def test_db_upgrade_creates_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLP_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("NLP_DATABASE_URL", raising=False)
    assert main(["db", "upgrade"]) == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'nlp_service.db'}")
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"comments", "predictions", "comment_topics", "comment_terms", "topic_counts"} <= tables
