"""The standalone worker serves Prometheus metrics: a real ``nlp-service worker`` process delivers one webhook
(the receiver fails once, then accepts) and its ``/metrics`` shows the job runs, the attempts by result, the
outbox by state and a queued detection job, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import REPO_ROOT
from nlp_service.db import session_scope
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.jobs import service as jobs
from nlp_service.webhooks import service as webhooks
from nlp_service.webhooks.payloads import sample_alert_data
from nlp_service.webhooks.safety import TargetPolicy
from nlp_service.webhooks.schemas import CreateWebhookRequest
from tests.webhooks.receiver import LocalReceiver, Reply

SECRET_KEY = SecretBox.generate_key()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_standalone_worker_serves_metrics(
    database_url: str, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    port = _free_port()
    with LocalReceiver() as rx:
        rx.script([Reply(500)])  # the first attempt fails, the retry is delivered
        with session_scope(db_sessions) as s:
            webhooks.create(
                db_session=s,
                request=CreateWebhookRequest(url=rx.url),  # type: ignore[arg-type]
                policy=TargetPolicy(allow_loopback=True),
                box=SecretBox([SECRET_KEY]),
                max_subscriptions=10,
            )
            webhooks.enqueue_event(
                db_session=s, event_type="alert.created", payload=sample_alert_data("alr_metrics")
            )
            jobs.submit(db_session=s, kind="detect", params={})
        env = {
            **os.environ,
            "NLP_DATABASE_URL": database_url,
            "NLP_VAR_DIR": str(tmp_path / "var"),
            "NLP_SECRET_KEYS": SECRET_KEY,
            "NLP_WEBHOOK_ALLOW_LOOPBACK": "true",
            "NLP_WEBHOOK_POLL_INTERVAL_S": "0.05",
            "NLP_WEBHOOK_RETRY_SCHEDULE_S": "[0, 0.2, 0.5]",
            "NLP_WEBHOOK_RETRY_JITTER": "0",
            "NLP_WORKER_METRICS_PORT": str(port),
            "NLP_LOG_LEVEL": "warning",
            "PYTHONPATH": str(REPO_ROOT),
        }
        cmd = [sys.executable, "-m", "nlp_service.cli", "worker", "--jobs", "webhook-delivery"]
        log = (tmp_path / "worker.log").open("wb")
        proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline, samples = time.monotonic() + 60, {}
            while time.monotonic() < deadline:
                try:
                    samples = _samples(port)
                except OSError:
                    samples = {}
                if samples.get(("nlp_webhook_deliveries", (("state", "delivered"),))) == 1:
                    break
                assert proc.poll() is None, (tmp_path / "worker.log").read_text()
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(30)
    assert samples.get(("nlp_webhook_deliveries", (("state", "delivered"),))) == 1, samples
    assert samples[("nlp_webhook_delivery_attempts_total", (("result", "pending"),))] == 1  # failed, retried
    assert samples[("nlp_webhook_delivery_attempts_total", (("result", "delivered"),))] == 1
    assert samples[("nlp_worker_job_runs_total", (("job", "webhook-delivery"), ("outcome", "ok")))] >= 2
    assert samples[("nlp_worker_job_duration_seconds_count", (("job", "webhook-delivery"),))] >= 2
    assert samples[("nlp_jobs", (("kind", "detect"), ("state", "queued")))] == 1
    assert len(rx.requests) == 2


def test_a_taken_metrics_port_does_not_stop_a_second_worker(tmp_path: Path) -> None:
    """Two workers on one host: the second cannot bind the port; it warns and runs without metrics."""
    from nlp_service.config import Settings
    from nlp_service.db import make_engine, make_sessionmaker
    from nlp_service.worker_metrics import WorkerMetrics, serve_metrics

    settings = Settings(var_dir=tmp_path, worker_metrics_port=_free_port())
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    sessions = make_sessionmaker(engine)
    assert serve_metrics(settings, WorkerMetrics(), sessions) is True
    assert serve_metrics(settings, WorkerMetrics(), sessions) is False  # port taken: no exception
    assert _samples(settings.worker_metrics_port) is not None  # the first one still serves
    engine.dispose()
