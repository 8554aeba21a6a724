"""The worker: job registry, own sessions, returned delays, errors, graceful stop; embedded in the app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from nlp_service.config import Settings
from nlp_service.worker import JOB_MODULES, JOBS, JobContext, Worker, job, load_jobs
from tests.conftest import local_client


@pytest.fixture
def scratch_jobs() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        JOBS.pop(name, None)


def test_registry_discovers_webhook_delivery_and_checks_names(scratch_jobs) -> None:
    assert "webhook-delivery" in load_jobs(["webhook-delivery"])
    with pytest.raises(ValueError, match="kebab-case"):
        job("Bad_Name", interval_s=1)


def test_every_listed_job_is_registered_by_its_module_and_every_jobs_module_is_listed() -> None:
    registry = load_jobs()
    for name, module in JOB_MODULES.items():
        assert registry[name].fn.__module__ == module
    service_jobs = {n for n, spec in registry.items() if spec.fn.__module__.startswith("nlp_service.")}
    assert service_jobs == set(JOB_MODULES)
    root = Path(__file__).resolve().parents[2] / "nlp_service"
    on_disk = {f"nlp_service.{path.parent.name}.jobs" for path in root.glob("*/jobs.py")}
    assert set(JOB_MODULES.values()) == on_disk


def test_worker_runs_sync_and_async_jobs_and_stops_gracefully(
    settings: Settings, sessions, scratch_jobs
) -> None:
    seen: dict[str, list] = {"sync": [], "async": [], "finished": []}
    scratch_jobs += ["test-sync", "test-async", "test-broken"]

    @job("test-sync", interval_s=0.01)
    def sync_job(ctx: JobContext) -> None:
        with ctx.session() as db_session:  # its own session and transaction
            seen["sync"].append(db_session.execute(text("SELECT 1")).scalar())

    @job("test-async", interval_s=lambda s: 60.0)
    async def async_job(ctx: JobContext) -> float:
        seen["async"].append(ctx.worker_id)
        await asyncio.sleep(0.05)
        seen["finished"].append(True)
        return 0.01  # overrides the 60 s interval

    @job("test-broken", interval_s=0.01)
    def broken(ctx: JobContext) -> None:
        raise RuntimeError("boom")

    async def scenario() -> Worker:
        worker = Worker(settings, sessionmaker=sessions, jobs=scratch_jobs, worker_id="w-1")
        await worker.start()
        await asyncio.sleep(0.3)
        await worker.stop()
        assert not worker.running
        return worker

    worker = asyncio.run(scenario())
    assert len(seen["sync"]) >= 3 and set(seen["sync"]) == {1}
    assert len(seen["async"]) >= 3 and seen["async"][0] == "w-1"
    assert len(seen["finished"]) == len(seen["async"])  # stop waited for the run in progress
    assert worker.runs["test-broken"] >= 3  # errors are logged, the job keeps its schedule
    with pytest.raises(ValueError, match="unknown jobs"):
        Worker(settings, sessionmaker=sessions, jobs=["no-such-job"])


def test_embedded_worker_delivers_from_the_api(tmp_path: Path, receiver) -> None:
    """create_app starts the worker in its lifespan (run_worker_in_process, the default)."""
    from nlp_service.main import create_app

    settings = Settings(
        var_dir=tmp_path / "var",
        models_dir=tmp_path / "no-models",  # models never load; the webhook API does not need them
        database_url=f"sqlite:///{(tmp_path / 'app.db').as_posix()}",
        webhook_allow_loopback=True,
        webhook_poll_interval_s=0.02,
    )
    assert settings.run_worker_in_process
    with local_client(create_app(settings)) as client:
        assert client.app.state.nlp.worker is not None
        created = client.post("/v1/webhooks", json={"url": receiver.url})
        assert created.status_code == 201, created.text
        assert client.post(f"/v1/webhooks/{created.json()['id']}/ping").status_code == 202
        assert receiver.wait_for(1, timeout_s=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            items = client.get(f"/v1/webhooks/{created.json()['id']}/deliveries").json()["items"]
            if items and items[0]["status"] == "delivered":
                break
            time.sleep(0.02)
        assert items[0]["status"] == "delivered"
    assert client.app.state.nlp.worker is None  # stopped with the app
    schema = create_app(settings).openapi()
    assert "/v1/webhooks/{webhook_id}/recover" in schema["paths"]
    assert set(schema["webhooks"]) == {
        "alert.created",
        "alert.updated",
        "alert.resolved",
        "incident.created",
        "incident.updated",
        "incident.resolved",
        "webhook.ping",
        "webhook.disabled",
    }


def test_database_warning_is_reset_when_the_database_comes_back(settings: Settings, sessions, caplog) -> None:
    """Tables gone (a fresh database before `db upgrade`), back, gone again: warned at each outage, once."""
    from nlp_service.db import Base, make_engine
    from tests.webhooks.conftest import WEBHOOK_TABLES, create_webhook_tables

    url = settings.resolved_database_url()

    def drop_tables() -> None:
        engine = make_engine(url)
        Base.metadata.drop_all(engine, tables=WEBHOOK_TABLES)
        engine.dispose()

    async def scenario() -> list:
        worker = Worker(settings, sessionmaker=sessions, jobs=["webhook-delivery"], worker_id="w-db")
        [spec] = worker.specs
        ctx = JobContext(spec.name, settings, sessions, "w-db", asyncio.Event())
        delays = []
        try:
            drop_tables()
            delays += [await worker._run_once(spec, ctx), await worker._run_once(spec, ctx)]
            create_webhook_tables(url)
            delays.append(await worker._run_once(spec, ctx))
            drop_tables()
            delays.append(await worker._run_once(spec, ctx))
        finally:
            for cleanup in ctx._cleanups:
                await cleanup()
            create_webhook_tables(url)
        return delays

    caplog.set_level("INFO", logger="nlp_service")
    delays = asyncio.run(scenario())
    warnings = [r for r in caplog.records if "database not usable" in r.getMessage()]
    assert len(warnings) == 2, [r.getMessage() for r in caplog.records]  # one per outage, not one per run
    assert any("usable again" in r.getMessage() for r in caplog.records)
    assert delays[0] <= 1.0 and delays[1] > delays[0]  # retried soon, then backing off
    assert delays[2] is None or delays[2] < 1.0
