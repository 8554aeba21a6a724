"""Prometheus metrics of a worker: job runs and durations, webhook delivery attempts, and, read from the
database at scrape time, the outbox depth and the durable jobs by state.

The standalone worker (``nlp-service worker``) serves them on ``NLP_WORKER_METRICS_PORT`` (0: off); a worker
embedded in the API process adds them to the API's ``/metrics``. Counters count what this process did since it
started (summed across workers by Prometheus); gauges read from the database are the same in every worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.db import session_scope

log = logging.getLogger(__name__)

JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class WorkerMetrics:
    """The counters and histograms a worker updates, and the database gauges (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.job_runs = Counter(
            "nlp_worker_job_runs_total",
            "Runs of a worker job, by outcome (ok, error, db_unavailable)",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "nlp_worker_job_duration_seconds",
            "Duration of one run of a worker job (alert-detection: a detection run)",
            ["job"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.jobs_finished = Counter(
            "nlp_jobs_finished_total",
            "Claims of durable jobs ended, by kind and outcome "
            "(succeeded, failed, cancelled, retry, released, lost)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.job_slice_duration = Histogram(
            "nlp_job_slice_duration_seconds",
            "Duration of one slice of a durable job (read, compute, write)",
            ["kind"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.delivery_attempts = Counter(
            "nlp_webhook_delivery_attempts_total",
            "Webhook delivery attempts, by the delivery's state after it "
            "(delivered, pending = failed and retried later, dead, failed = subscription disabled, lost)",
            ["result"],
            registry=self.registry,
        )

    def watch_database(self, sessions: sessionmaker[Session]) -> None:
        """Also report the outbox depth and jobs by state, read from the database at each scrape."""
        self.registry.register(DatabaseGauges(sessions))

    def record_attempts(self, results: list[str]) -> None:
        for result in results:
            self.delivery_attempts.labels(result=result).inc()


class DatabaseGauges(Collector):
    """Gauges counted in the database when scraped: deliveries by state (``pending`` is the outbox depth) and
    every durable job table by state. A database that cannot be read yields no samples (and a debug log)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> list[Any]:
        return []  # counted at collect time only (no database access at registration)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from nlp_service.jobs.tables import Job
        from nlp_service.topics.tables import RetagJob
        from nlp_service.webhooks.tables import WebhookDelivery

        deliveries = GaugeMetricFamily(
            "nlp_webhook_deliveries", "Webhook deliveries by state (pending = outbox depth)", labels=["state"]
        )
        jobs = GaugeMetricFamily(
            "nlp_jobs", "Durable background jobs by kind and state", labels=["kind", "state"]
        )
        try:
            with session_scope(self.sessions) as db:
                for state, n in _by_state(db, WebhookDelivery.status):
                    deliveries.add_metric([state], n)
                for state, n in _by_state(db, RetagJob.status):
                    jobs.add_metric(["topic_retag", state], n)
                rows = db.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))
                for kind, state, n in rows:
                    jobs.add_metric([str(kind), str(state)], int(n))
        except SQLAlchemyError as exc:
            log.debug("worker metrics: database not readable: %s", exc)
            return
        yield deliveries
        yield jobs


def _by_state(db: Session, column: Any) -> list[tuple[str, int]]:
    rows = db.execute(select(column, func.count()).group_by(column)).all()
    return [(str(row[0]), int(row[1])) for row in rows]


def serve_metrics(settings: Settings, metrics: WorkerMetrics, sessions: sessionmaker[Session]) -> bool:
    """Serve ``metrics`` (plus the database gauges) on ``worker_metrics_host:worker_metrics_port`` in a
    background thread; port 0 serves nothing. A port already taken (a second worker on the host) is a warning,
    not a failure: the worker runs its jobs without metrics. Returns whether the metrics are served."""
    if not settings.worker_metrics_port:
        return False
    from prometheus_client import start_http_server

    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    try:
        start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        log.warning(
            "worker metrics not served on %s:%d: %s (give each worker on a host its own "
            "NLP_WORKER_METRICS_PORT, or 0)",
            host,
            port,
            exc.strerror or exc,
        )
        return False
    metrics.watch_database(sessions)
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    return True
