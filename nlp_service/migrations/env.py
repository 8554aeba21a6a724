"""Alembic environment: migrations run online against the configured URL."""

from __future__ import annotations

from alembic import context

from nlp_service.db import Base, import_all_tables, is_sqlite, make_engine

import_all_tables()
target_metadata = Base.metadata


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
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
