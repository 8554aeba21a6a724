"""Migrations at start-up: replicas starting together on a fresh PostgreSQL database all succeed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from nlp_service.config import REPO_ROOT
from nlp_service.db import make_engine

PG_URL = os.environ.get("NLP_TEST_DATABASE_URL")


@pytest.fixture
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database named after the test database (dropped afterwards)."""
    if not PG_URL:
        pytest.skip("NLP_TEST_DATABASE_URL not set")
    base = make_url(PG_URL)
    name = f"{base.database}_mig_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_concurrent_upgrades_on_a_fresh_database_all_succeed(fresh_pg_database: str, tmp_path: Path) -> None:
    env = {**os.environ, "NLP_DATABASE_URL": fresh_pg_database, "NLP_VAR_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "nlp_service.cli", "db", "upgrade"]
    procs = [
        subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(3)
    ]
    outputs = [(p.wait(timeout=120), p.stdout.read().decode()[-2000:]) for p in procs]  # type: ignore[union-attr]
    assert [code for code, _ in outputs] == [0, 0, 0], outputs
    engine = make_engine(fresh_pg_database)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar()
    engine.dispose()
    assert versions and len(versions) == len(set(versions)) and tables and tables > 5
