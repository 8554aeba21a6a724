"""The database's identity: a random id written once into ``database_meta`` (by the migration, or on first
use when the table was emptied). A saved vector index records it and is rebuilt when it differs, so row ids
that another database (a restore into a fresh database) reuses never map to this one's vectors."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nlp_service.search.tables import DatabaseMeta

DATABASE_ID = "database_id"


def new_database_id() -> str:
    return uuid.uuid4().hex


def database_id(*, db_session: Session) -> str:
    """This database's identity, created if missing (concurrent first calls agree on one)."""
    value = db_session.scalar(select(DatabaseMeta.value).where(DatabaseMeta.key == DATABASE_ID))
    if value is not None:
        return value
    try:
        with db_session.begin_nested():
            db_session.add(DatabaseMeta(key=DATABASE_ID, value=new_database_id()))
    except IntegrityError:  # another process wrote it first
        pass
    value = db_session.scalar(select(DatabaseMeta.value).where(DatabaseMeta.key == DATABASE_ID))
    assert value is not None
    return value
