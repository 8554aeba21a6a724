"""Fixtures for access-control tests: keys written straight to the database, an app with keys on."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from nlp_service.auth import service
from nlp_service.auth.scopes import SCOPES
from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker, session_scope


def make_key(url: str, scopes: list[str], name: str = "test") -> str:
    """Create a key in the database at ``url`` (as the CLI would) and return it."""
    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            return service.create(db_session=session, name=name, scopes=scopes)[1]
    finally:
        engine.dispose()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def new_key(database_url: str) -> Callable[..., str]:
    return lambda *scopes, name="test": make_key(database_url, list(scopes), name)


@pytest.fixture
def keyed_client(app_settings: Settings, start_app, new_key) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app with keys on (one key exists: all scopes, available as ``client.admin_key``); failed
    authentications are not limited (tests send many bad keys from one address)."""
    admin_key = new_key(*SCOPES, name="all")
    with start_app(app_settings.model_copy(update={"auth_failure_per_s": 0})) as client:
        client.admin_key = admin_key  # type: ignore[attr-defined]
        yield client
