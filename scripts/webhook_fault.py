"""Fault test for webhook delivery: SIGKILL a worker process while sends are in flight, restart it, check.

    python scripts/webhook_fault.py [--database-url URL] [--events 40] [--json OUT.json]

A slow local receiver gets ``--events`` events from ``nlp-service worker`` (a separate process). The first
worker is killed (SIGKILL) once some requests are in flight; a second one is started and stopped with SIGTERM
once the outbox is empty. Passes when every event reached the receiver at least once, every request carried a
known event id with a valid signature (retries reuse the id), and deduplication by ``webhook-id`` leaves each
event exactly once. Exit code 0 on success.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from nlp_service.config import Settings  # noqa: E402
from nlp_service.db import Base, make_engine, make_sessionmaker, session_scope  # noqa: E402
from nlp_service.hardening.secretbox import load_secret_box  # noqa: E402
from nlp_service.webhooks import service, tables  # noqa: E402
from nlp_service.webhooks.deliveries import queue_counts  # noqa: E402
from nlp_service.webhooks.payloads import sample_alert_data  # noqa: E402
from nlp_service.webhooks.safety import TargetPolicy  # noqa: E402
from nlp_service.webhooks.schemas import CreateWebhookRequest  # noqa: E402
from nlp_service.webhooks.signing import SignatureError, verify  # noqa: E402
from tests.webhooks.receiver import LocalReceiver  # noqa: E402

TABLES = [
    tables.WebhookSubscription.__table__,
    tables.WebhookEvent.__table__,
    tables.WebhookDelivery.__table__,
    tables.WebhookAttempt.__table__,
]


def start_worker(url: str, lease_s: float, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NLP_DATABASE_URL": url,
        "NLP_VAR_DIR": str(log_path.parent),  # the key file sealing the secret (unless NLP_SECRET_KEYS)
        "NLP_WEBHOOK_ALLOW_LOOPBACK": "true",
        "NLP_WEBHOOK_LEASE_S": str(lease_s),
        "NLP_WEBHOOK_RETRY_SCHEDULE_S": "[0, 0.2, 0.5, 1, 1, 1, 1, 1, 1, 1]",
        "NLP_WEBHOOK_RETRY_JITTER": "0",
        "NLP_WEBHOOK_POLL_INTERVAL_S": "0.05",
        "NLP_WEBHOOK_CONCURRENCY": "8",
        "NLP_WEBHOOK_TIMEOUT_S": str(lease_s / 2),  # the lease must be at least twice the timeout
        "NLP_WORKER_SHUTDOWN_GRACE_S": "5",
        "NLP_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "nlp_service.cli", "worker", "--jobs", "webhook-delivery"]
    out = log_path.open("ab")
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def outstanding(sessions: sessionmaker[Session]) -> dict[str, int]:
    with session_scope(sessions) as db_session:
        return queue_counts(db_session=db_session)


def run(
    *,
    database_url: str | None = None,
    events: int = 40,
    receiver_delay_s: float = 0.3,
    kill_after_requests: int = 6,
    lease_s: float = 2.0,
    timeout_s: float = 60.0,
) -> dict[str, Any]:
    """Run the scenario and return a summary (``ok`` says whether every check passed)."""
    tmp = Path(tempfile.mkdtemp(prefix="webhook-fault-"))
    url = database_url or f"sqlite:///{(tmp / 'fault.db').as_posix()}"
    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=TABLES)
    sessions = make_sessionmaker(engine)
    log_path = tmp / "worker.log"
    started = time.monotonic()
    with LocalReceiver(delay_s=receiver_delay_s) as rx:
        request = CreateWebhookRequest(url=rx.url, description="fault test")
        with session_scope(sessions) as db_session:
            settings = Settings(var_dir=tmp)  # what the workers use
            sub, secret = service.create(
                db_session=db_session,
                request=request,
                policy=TargetPolicy(allow_loopback=True),
                box=load_secret_box(settings),
                max_subscriptions=settings.webhook_max_subscriptions,
            )
            event_ids = set()
            for i in range(events):
                for d in service.enqueue_event(
                    db_session=db_session, event_type="alert.created", payload=sample_alert_data(f"al_{i}")
                ):
                    if d.subscription_id == sub.id:
                        event_ids.add(d.event_id)

        first = start_worker(url, lease_s, log_path)
        if not rx.wait_for(kill_after_requests, timeout_s=30):
            first.kill()
            raise RuntimeError(f"the first worker sent nothing; see {log_path}")
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = outstanding(sessions)
        requests_at_kill = len(rx.requests)

        second = start_worker(url, lease_s, log_path)
        deadline = time.monotonic() + timeout_s
        counts = outstanding(sessions)
        while time.monotonic() < deadline:
            counts = outstanding(sessions)
            if (
                counts.get("delivered", 0) >= events
                and not counts.get("pending")
                and not counts.get("in_flight")
            ):
                break
            time.sleep(0.1)
        second.send_signal(signal.SIGTERM)
        try:
            second_exit = second.wait(timeout=15)
        except subprocess.TimeoutExpired:
            second.kill()
            second_exit = -9
        seen = rx.ids()
        bad_signatures = 0
        for req in rx.requests:
            try:
                verify(secret, req.headers, req.body, tolerance_s=600)
            except SignatureError:
                bad_signatures += 1
    engine.dispose()
    missing = sorted(event_ids - set(seen))
    unknown = sorted(set(seen) - event_ids)
    duplicates = {i: n for i, n in seen.items() if n > 1}
    summary = {
        "events": events,
        "requests_received": sum(seen.values()),
        "requests_before_kill": requests_at_kill,
        "in_flight_at_kill": at_kill.get("in_flight", 0),
        "unique_event_ids_received": len(seen),
        "events_with_retries": len(duplicates),
        "max_requests_per_event": max(seen.values(), default=0),
        "missing_events": len(missing),
        "unknown_ids": len(unknown),
        "bad_signatures": bad_signatures,
        "final_statuses": counts,
        "second_worker_exit_code": second_exit,
        "elapsed_s": round(time.monotonic() - started, 2),
        "worker_log": str(log_path),
    }
    summary["ok"] = bool(
        not missing
        and not unknown
        and not bad_signatures
        and len(seen) == events
        and counts.get("delivered", 0) == events
        and second_exit == 0
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--receiver-delay-s", type=float, default=0.3)
    parser.add_argument("--json", default=None, help="write the summary to this file")
    args = parser.parse_args(argv)
    summary = run(database_url=args.database_url, events=args.events, receiver_delay_s=args.receiver_delay_s)
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
