"""SQLite durability: ``synchronous`` is chosen explicitly (FULL by default), checked on a real connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from nlp_service.config import Settings
from nlp_service.db import make_engine

# PRAGMA synchronous answers 0 = OFF, 1 = NORMAL, 2 = FULL, 3 = EXTRA.
LEVELS = {"NORMAL": 1, "FULL": 2}


def synchronous_of(url: str, **kwargs: object) -> int:
    engine = make_engine(url, **kwargs)  # type: ignore[arg-type]
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("PRAGMA synchronous")).scalar_one())
    finally:
        engine.dispose()


def test_sqlite_commits_are_durable_by_default(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    assert synchronous_of(url) == LEVELS["FULL"]
    assert Settings().sqlite_synchronous == "FULL"


@pytest.mark.parametrize("level", ["NORMAL", "FULL"])
def test_sqlite_synchronous_follows_the_setting(tmp_path: Path, level: str) -> None:
    url = f"sqlite:///{tmp_path / 'chosen.db'}"
    settings = Settings(sqlite_synchronous=level)  # type: ignore[arg-type]
    assert synchronous_of(url, sqlite_synchronous=settings.sqlite_synchronous) == LEVELS[level]


def test_an_unknown_synchronous_level_is_refused() -> None:
    with pytest.raises(ValueError):
        Settings(sqlite_synchronous="OFF")  # type: ignore[arg-type]


def test_the_app_opens_its_database_with_the_configured_level(tmp_path: Path, start_app) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'app.db'}"
    settings = Settings(var_dir=tmp_path / "var", database_url=url, sqlite_synchronous="NORMAL")
    with start_app(settings) as client:
        state = client.app.state.nlp
        for engine in (state.db.kw["bind"], state.auth.store.engine):
            with engine.connect() as conn:
                assert conn.execute(text("PRAGMA synchronous")).scalar_one() == LEVELS["NORMAL"]
