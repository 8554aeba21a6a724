"""Alembic environment: migrations run online against the configured URL."""

from __future__ import annotations

import importlib.util

from alembic import context
from alembic.operations import Operations
from sqlalchemy import Connection, inspect, text

from nlp_service.db import MIGRATIONS_DIR, Base, import_all_tables, is_sqlite, make_engine

import_all_tables()
target_metadata = Base.metadata

# Databases migrated while 0003_webhooks and 0004_api_keys were two heads on 0001_comments, before
# 0002_alerts made the chain linear (0001 -> 0002 -> 0003 -> 0004).
LEGACY_HEADS = {"0003_webhooks", "0004_api_keys"}


def repair_legacy_heads(connection: Connection) -> None:
    """Bring a database at the old two heads onto the linear chain: apply 0002_alerts (which it lacks) and
    keep only ``0004_api_keys`` as its version. A no-op for every other database."""
    if not inspect(connection).has_table("alembic_version"):
        return
    versions = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    if versions != LEGACY_HEADS:
        return
    if not inspect(connection).has_table("alerts"):
        spec = importlib.util.spec_from_file_location(
            "_m0002", MIGRATIONS_DIR / "versions" / "0002_alerts.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with Operations.context(context.get_context()):
            module.upgrade()
    connection.execute(text("DELETE FROM alembic_version WHERE version_num = '0003_webhooks'"))


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=is_sqlite(url),
            compare_type=True,
        )
        repair_legacy_heads(connection)
        if connection.in_transaction():
            connection.commit()
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
