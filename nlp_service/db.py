"""Database: declarative base, engine and session factories, transactions for jobs, Alembic upgrades.

The database is the source of truth. SQLite (embedded default) and PostgreSQL (production) are both supported.
Services flush and never commit: views and jobs own the transaction (``session_scope``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:
    from alembic.config import Config

from nlp_service.hardening.files import private_dir, private_file

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = 0x6E6C705F6D696772  # PostgreSQL advisory lock held while migrating ("nlp_migr")

SqliteSynchronous = Literal["FULL", "NORMAL"]


class Base(DeclarativeBase):
    """Base class of every table (the ``tables.py`` modules listed in ``TABLE_MODULES``)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored in UTC; SQLite (no time zones) stores naive UTC and gives it back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: a time zone is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def dialect_insert(db_session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` with ``ON CONFLICT`` support for the session's database (PostgreSQL or SQLite)."""
    if db_session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def rowcount(result: Result[Any]) -> int:
    """Rows an ``UPDATE``/``DELETE`` run through a session matched (``Session.execute`` returns a
    ``CursorResult`` for them, though its signature says ``Result``)."""
    return cast(CursorResult[Any], result).rowcount


def make_engine(
    url: str, *, echo: bool = False, pool_size: int = 10, sqlite_synchronous: SqliteSynchronous = "FULL"
) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout and ``sqlite_synchronous``
    (FULL: a commit is on disk before it returns; NORMAL: in WAL mode the last commits can be lost on power
    loss, never corrupted), and its file is created private (0600, in a 0700 folder if the folder is new;
    its -wal and -shm files get the same mode)."""
    if sqlite_synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"sqlite_synchronous must be FULL or NORMAL, not {sqlite_synchronous!r}")
    if is_sqlite(url):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""  # sqlite:// is in memory
        if path and path != ":memory:":
            private_dir(Path(path).parent)
            private_file(Path(path))
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.close()

        return engine
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision``.

    On PostgreSQL under a session advisory lock, so replicas starting together migrate one at a time (the
    later ones find nothing left to do); a process that dies releases it with its connection.
    """
    from alembic import command

    if is_sqlite(url):
        command.upgrade(alembic_config(url), revision)
        return
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                command.upgrade(alembic_config(url), revision)
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    finally:
        engine.dispose()


# Every module defining tables: imported by ``import_all_tables`` (Alembic's environment) so that
# ``Base.metadata`` knows them all. A new ``tables.py`` is listed here.
TABLE_MODULES = (
    "nlp_service.anomaly.tables",
    "nlp_service.auth.tables",
    "nlp_service.cases.tables",
    "nlp_service.comments.tables",
    "nlp_service.idempotency.tables",
    "nlp_service.incidents.tables",
    "nlp_service.jobs.tables",
    "nlp_service.search.tables",
    "nlp_service.topics.tables",
    "nlp_service.webhooks.tables",
)


def import_all_tables() -> None:
    """Import every module of ``TABLE_MODULES`` so ``Base.metadata`` knows all tables."""
    for module in TABLE_MODULES:
        importlib.import_module(module)
