"""The saved vector index belongs to one database: pointed at another one that reuses its row ids (a restore
into a fresh database), it is rebuilt instead of serving the other database's vectors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from nlp_service.db import upgrade
from tests.conftest import truncate_all

T0 = datetime(2024, 3, 11, 8, 0, tzinfo=UTC)
TEXTS_1 = ["the parcel arrived late", "the courier lost my package", "tracking never updated"]
TEXTS_2 = ["my card was charged twice", "the coupon did not apply", "the invoice shows the wrong tax"]


def comments(texts: list[str], prefix: str, n: int = 30) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{i:03d}",  # ids sort like row ids (ingest inserts in id order)
            "text": f"{texts[i % len(texts)]} (case {prefix}-{i})",
            "created_at": (T0 + timedelta(minutes=i)).isoformat(),
            "source": "survey",
        }
        for i in range(n)
    ]


def another_database(url: str, tmp_path: Path) -> str:
    """An empty migrated database whose row ids start again at 1: a new SQLite file, or (PostgreSQL) the
    test database emptied with its sequences restarted."""
    if url.startswith("sqlite"):
        other = f"sqlite:///{(tmp_path / 'restored.db').as_posix()}"
        upgrade(other, "heads")
        return other
    truncate_all(url)
    return url


def ingest(client: TestClient, items: list[dict[str, Any]]) -> None:
    r = client.post("/v1/comments", json={"comments": items})
    assert r.status_code == 201, r.text


def test_index_is_rebuilt_for_another_database(app_settings, start_app, tmp_path: Path) -> None:
    with start_app(app_settings) as client:
        ingest(client, comments(TEXTS_1, "a"))
        first_rows = client.get("/v1/search/index").json()
    assert (app_settings.var_dir / "search" / "vectors.faiss").is_file()

    # Same index folder, another database holding other comments under the same row ids.
    other = another_database(app_settings.resolved_database_url(), tmp_path)
    other_settings = app_settings.model_copy(update={"database_url": other, "var_dir": tmp_path / "other"})
    restored = comments(TEXTS_2, "b")
    with start_app(other_settings) as client:
        ingest(client, restored)
        assert client.get("/v1/search/index").json()["max_row_id"] == first_rows["max_row_id"]

    with start_app(app_settings.model_copy(update={"database_url": other})) as client:
        for item in restored[:6]:
            r = client.post("/v1/search", json={"query": item["text"], "k": 1})
            assert r.status_code == 200, r.text
            top = r.json()["results"][0]
            assert top["id"] == item["id"] and top["score"] > 0.999, (item, top)


def roll_back_to(url: str, keep: int, comment_ids: list[str]) -> None:
    """Make the database what a backup taken after ``keep`` comments restores: the later comments gone and
    the row-id counter back at ``keep`` (same database, same identity)."""
    from sqlalchemy import text

    from nlp_service.comments import service as comments_service
    from nlp_service.db import make_engine, make_sessionmaker, session_scope

    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            for cid in comment_ids:
                comments_service.delete(db_session=session, comment_id=cid)
            if url.startswith("sqlite"):
                session.execute(
                    text("UPDATE sqlite_sequence SET seq = :n WHERE name = 'comments'"), {"n": keep}
                )
            else:
                session.execute(
                    text("SELECT setval(pg_get_serial_sequence('comments', 'row_id'), :n)"), {"n": keep}
                )
    finally:
        engine.dispose()


def test_index_is_rebuilt_after_a_restore_of_the_same_database(app_settings, start_app, tmp_path) -> None:
    """A backup of this very database (same identity) restored, then other comments stored under the row
    ids the index still holds: the newest vectors no longer match the database, so the index is rebuilt."""
    first = comments(TEXTS_1, "a", n=100)  # the backup holds 20; the index's 64 newest all come later
    with start_app(app_settings) as client:
        ingest(client, first)
    roll_back_to(app_settings.resolved_database_url(), 20, [c["id"] for c in first[20:]])
    later = comments(TEXTS_2, "b", n=10)
    with start_app(app_settings.model_copy(update={"var_dir": tmp_path / "replica"})) as client:
        ingest(client, later)  # through another replica: row ids 21..30 again
        assert client.get("/v1/search/index").json()["max_row_id"] == 30
    with start_app(app_settings) as client:
        for item in [*later, first[0], first[19]]:
            r = client.post("/v1/search", json={"query": item["text"], "k": 1})
            assert r.status_code == 200, r.text
            top = r.json()["results"][0]
            assert top["id"] == item["id"] and top["score"] > 0.999, (item, top)
