"""Key storage and verification: hashed at rest, constant-time checked, revocable."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from nlp_service.auth import service
from nlp_service.auth.scopes import SCOPES, parse_scopes
from nlp_service.db import make_engine, make_sessionmaker, session_scope


@pytest.fixture
def sessions(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_table_holds_no_plain_key(sessions) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sessions) as session:
        row, key = service.create(db_session=session, name="ci", scopes=["classify", "search"])
    secret = key.split("_", 2)[2]
    assert key == f"nlp_{row.id}_{secret}" and len(secret) >= 40
    with sessions() as session:
        dump = " ".join(str(v) for r in session.execute(text("SELECT * FROM api_keys")) for v in r)
    assert row.id in dump
    assert secret not in dump and key not in dump
    assert row.secret_hash != secret and len(row.secret_hash) == 64


def test_verify_accepts_the_key_and_nothing_else(sessions) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sessions) as session:
        row, key = service.create(db_session=session, name="ci", scopes=["classify"])
    with sessions() as session:
        assert service.verify(db_session=session, token=key).id == row.id  # type: ignore[union-attr]
        tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
        for bad in (tampered, key + "x", key.replace(row.id, "0" * 16), "nlp_", "", "Bearer " + key):
            assert service.verify(db_session=session, token=bad) is None


def test_revoked_key_no_longer_verifies(sessions) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sessions) as session:
        row, key = service.create(db_session=session, name="ci", scopes=["classify"])
    with session_scope(sessions) as session:
        service.revoke(db_session=session, key_id=row.id)
        service.revoke(db_session=session, key_id=row.id)  # idempotent
    with sessions() as session:
        assert service.verify(db_session=session, token=key) is None
        assert service.any_exist(db_session=session)  # revoked keys keep keys on


def test_parse_scopes() -> None:
    assert parse_scopes("search, classify,search") == ["classify", "search"]
    assert parse_scopes("all") == sorted(SCOPES)
    with pytest.raises(ValueError, match="unknown"):
        parse_scopes("classify,root")
    with pytest.raises(ValueError):
        parse_scopes(" , ")
