"""Background worker: runs registered periodic jobs (webhook delivery, alert detection, ...).

Register a job with ``@job`` in a ``jobs.py`` module of its domain package, and list it in ``JOB_MODULES``::

    from nlp_service.worker import JobContext, job

    @job("alert-detection", interval_s=lambda s: s.detection_interval_s)
    def detect_alerts(ctx: JobContext) -> None:          # sync jobs run in a thread
        with ctx.session() as db_session:                # one transaction, committed on success
            alerts.service.detect(db_session=db_session, settings=ctx.settings)

Async jobs (``async def``) run on the worker's event loop. A job may return a number of seconds to override
the delay before its next run (``0`` = again at once). Errors are logged; the job runs again after its
interval, or, when the database was unusable, after a short backoff (one warning per outage). The worker
runs embedded in the API process (``Settings.run_worker_in_process``) or alone: ``nlp-service worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker, session_scope
from nlp_service.worker_metrics import WorkerMetrics, serve_metrics

log = logging.getLogger(__name__)

JobFn = Callable[["JobContext"], Any]
Interval = float | Callable[[Settings], float]
DB_RETRY_FIRST_S = 0.5  # a job that found the database unusable runs again after this, doubling each time
DB_RETRY_MAX_S = 30.0


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: JobFn
    interval_s: Interval

    def interval(self, settings: Settings) -> float:
        return float(self.interval_s(settings) if callable(self.interval_s) else self.interval_s)


JOBS: dict[str, JobSpec] = {}


def job(name: str, *, interval_s: Interval) -> Callable[[JobFn], JobFn]:
    """Register ``fn(ctx)`` as the periodic job ``name`` (kebab-case), run every ``interval_s`` seconds."""
    if not name or name != name.lower() or " " in name or "_" in name:
        raise ValueError(f"job names are kebab-case: {name!r}")

    def register(fn: JobFn) -> JobFn:
        existing = JOBS.get(name)
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"job {name!r} is already registered")
        JOBS[name] = JobSpec(name, fn, interval_s)
        return fn

    return register


# Every job of the service and the module whose ``@job`` registers it: a worker imports only the modules of
# the jobs it runs, so one running only light jobs does not import heavy ones (models).
JOB_MODULES: dict[str, str] = {
    "alert-detection": "nlp_service.anomaly.jobs",
    "background-jobs": "nlp_service.jobs.jobs",
    "idempotency-cleanup": "nlp_service.idempotency.jobs",
    "topic-discovery": "nlp_service.topics.jobs",
    "topic-retag": "nlp_service.topics.jobs",
    "webhook-delivery": "nlp_service.webhooks.jobs",
    "webhook-maintenance": "nlp_service.webhooks.jobs",
}


def load_jobs(wanted: Iterable[str] | None = None) -> dict[str, JobSpec]:
    """Import the modules of the ``wanted`` jobs (all of ``JOB_MODULES`` by default) so they register.

    A wanted name that is neither listed nor registered already loads every module, so that the caller's
    error can name all known jobs."""
    want = list(JOB_MODULES) if wanted is None else list(wanted)
    if all(name in JOB_MODULES or name in JOBS for name in want):
        modules = {JOB_MODULES[name] for name in want if name in JOB_MODULES}
    else:
        modules = set(JOB_MODULES.values())
    for module in sorted(modules):
        importlib.import_module(module)
    missing = sorted(n for n in JOB_MODULES if JOB_MODULES[n] in modules and n not in JOBS)
    if missing:
        raise RuntimeError(f"jobs {missing} are listed in JOB_MODULES but their modules do not register them")
    return JOBS


@dataclass
class JobContext:
    """What a job gets: settings, a session factory, the worker id, a stop flag and per-job state."""

    name: str
    settings: Settings
    sessionmaker: sessionmaker[Session]
    worker_id: str
    stopping: asyncio.Event
    state: dict[str, Any] = field(default_factory=dict)
    _cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    db_failures: int = 0  # consecutive runs that found the database unusable (0: it is fine)
    metrics: WorkerMetrics | None = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in its own transaction: committed on success, rolled back on error."""
        with session_scope(self.sessionmaker) as db_session:
            yield db_session

    def on_stop(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run ``await cleanup()`` when the worker stops (close clients, release claims)."""
        self._cleanups.append(cleanup)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs jobs, each in its own loop; :meth:`stop` lets the current runs finish, then runs cleanups."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessionmaker: sessionmaker[Session] | None = None,
        jobs: Iterable[str] | None = None,
        worker_id: str | None = None,
        metrics: WorkerMetrics | None = None,
        resources: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        # Loaded things the jobs share (``jobs.resources``: an embedded worker gets the API's engine)
        self.resources: dict[str, Any] = resources if resources is not None else {}
        self._engine: Engine | None = None
        if sessionmaker is None:
            self._engine = make_engine(
                settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous
            )
            sessionmaker = make_sessionmaker(self._engine)
        self.sessionmaker = sessionmaker
        self.worker_id = worker_id or default_worker_id()
        wanted = list(jobs) if jobs is not None else None
        registry = load_jobs(wanted)
        names = wanted if wanted is not None else sorted(registry)
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise ValueError(f"unknown jobs {unknown}; known: {sorted(registry)}")
        self.specs = [registry[n] for n in names]
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._contexts: list[JobContext] = []
        self.runs: dict[str, int] = {spec.name: 0 for spec in self.specs}

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def start(self) -> None:
        """Start every job's loop in the background (embedded mode)."""
        self._stopping = asyncio.Event()
        for spec in self.specs:
            ctx = JobContext(spec.name, self.settings, self.sessionmaker, self.worker_id, self._stopping)
            ctx.metrics = self.metrics
            ctx.state["resources"] = self.resources
            self._contexts.append(ctx)
            self._tasks.append(asyncio.create_task(self._loop(spec, ctx), name=f"job-{spec.name}"))
        log.info("worker %s started: %s", self.worker_id, ", ".join(s.name for s in self.specs) or "no jobs")

    async def run(self) -> None:
        """Start and block until :meth:`request_stop` (or a signal handler calling it), then stop cleanly."""
        await self.start()
        await self._stopping.wait()
        await self.stop()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self, timeout_s: float | None = None) -> None:
        """Graceful stop: no new runs, wait for current ones (up to the grace period), then cleanups."""
        timeout_s = self.settings.worker_shutdown_grace_s if timeout_s is None else timeout_s
        self._stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for ctx in self._contexts:
            for cleanup in reversed(ctx._cleanups):
                try:
                    await cleanup()
                except Exception:
                    log.exception("cleanup of job %s failed", ctx.name)
        self._tasks, self._contexts = [], []
        if self._engine is not None:
            self._engine.dispose()
        log.info("worker %s stopped", self.worker_id)

    async def _run_once(self, spec: JobSpec, ctx: JobContext) -> Any:
        """One run; a database that is unusable (down, connection lost, tables missing) pauses the job with
        a backoff from 0.5 s to 30 s, with one warning per outage and a note when it is usable again."""
        try:
            if inspect.iscoroutinefunction(spec.fn):
                result = await spec.fn(ctx)
            else:
                result = await asyncio.to_thread(spec.fn, ctx)
        except (OperationalError, ProgrammingError) as exc:
            if not ctx.db_failures:  # e.g. tables missing: `nlp-service db upgrade`
                log.warning("job %s paused, database not usable: %s", spec.name, str(exc).splitlines()[0])
            ctx.db_failures += 1
            return min(DB_RETRY_MAX_S, DB_RETRY_FIRST_S * 2 ** (ctx.db_failures - 1))
        if ctx.db_failures:
            log.info("job %s: database usable again after %d failed runs", spec.name, ctx.db_failures)
            ctx.db_failures = 0
        return result

    async def _loop(self, spec: JobSpec, ctx: JobContext) -> None:
        while not self._stopping.is_set():
            delay: Any = None
            outcome, t0 = "ok", time.perf_counter()
            try:
                delay = await self._run_once(spec, ctx)
                outcome = "db_unavailable" if ctx.db_failures else "ok"
            except asyncio.CancelledError:
                raise
            except Exception:
                outcome = "error"
                log.exception("job %s failed", spec.name)
            self.runs[spec.name] += 1
            if self.metrics is not None:
                self.metrics.job_runs.labels(job=spec.name, outcome=outcome).inc()
                self.metrics.job_duration.labels(job=spec.name).observe(time.perf_counter() - t0)
            wait = spec.interval(self.settings) if not isinstance(delay, int | float) else float(delay)
            if wait <= 0:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)


def run_worker(settings: Settings, *, jobs: Iterable[str] | None = None) -> None:
    """Run a standalone worker until SIGTERM/SIGINT, then stop gracefully (``nlp-service worker``)."""
    import signal

    async def main() -> None:
        metrics = WorkerMetrics()
        worker = Worker(settings, jobs=jobs, metrics=metrics)
        serve_metrics(settings, metrics, worker.sessionmaker)
        await worker.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        await worker._stopping.wait()
        log.info("worker %s: stop requested", worker.worker_id)
        await worker.stop()

    asyncio.run(main())
