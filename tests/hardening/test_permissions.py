"""Files at rest are private: var/ is created 0700, the SQLite database (and its WAL files) 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from nlp_service.config import Settings
from nlp_service.db import make_engine, upgrade


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_database_and_its_folder_are_private(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "deeper" / "nlp.db"
    url = f"sqlite:///{db.as_posix()}"
    upgrade(url, "heads")  # what `nlp-service db upgrade` and the app's start-up do
    engine = make_engine(url)
    with engine.begin() as conn:  # a write: the -wal and -shm files exist now
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert mode(db) == 0o600
        for suffix in ("-wal", "-shm"):
            assert mode(db.with_name(db.name + suffix)) == 0o600
    engine.dispose()
    assert mode(tmp_path / "fresh") == 0o700 and mode(tmp_path / "fresh" / "deeper") == 0o700


def test_app_var_dir_is_private(app_client: TestClient, app_settings: Settings) -> None:
    """On SQLite and PostgreSQL alike (the search index and the key file live there)."""
    assert mode(app_settings.var_dir) == 0o700
    assert mode(app_settings.var_dir / "secret.key") == 0o600
