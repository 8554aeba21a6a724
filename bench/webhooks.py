"""Webhook delivery throughput: 1,000 queued events to a local receiver, signed and sent by the delivery loop.

    python bench/webhooks.py [--events 1000] [--concurrency 32] [--database-url URL] [--json OUT.json]

Queues the events (one outbox row each, one transaction), starts the receiver in its own process, then runs
the delivery runner (the ``webhook-delivery`` job's engine) until the queue is empty; reports deliveries/s,
time to empty the queue and per-attempt latency. Default database: a temporary SQLite file (PostgreSQL: a
temporary schema in the given database). Bar: >= 100 deliveries/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table  # noqa: E402
from nlp_service.config import Settings  # noqa: E402
from nlp_service.db import Base, make_engine, make_sessionmaker, session_scope  # noqa: E402
from nlp_service.hardening.secretbox import load_secret_box  # noqa: E402
from nlp_service.webhooks import service, tables  # noqa: E402
from nlp_service.webhooks.deliveries import queue_counts  # noqa: E402
from nlp_service.webhooks.payloads import sample_alert_data  # noqa: E402
from nlp_service.webhooks.runner import DeliveryRunner  # noqa: E402
from nlp_service.webhooks.safety import TargetPolicy  # noqa: E402
from nlp_service.webhooks.schemas import CreateWebhookRequest  # noqa: E402
from tests.webhooks.receiver import LocalReceiver  # noqa: E402

BAR_PER_S = 100.0
TABLES = [
    tables.WebhookSubscription.__table__,
    tables.WebhookEvent.__table__,
    tables.WebhookDelivery.__table__,
    tables.WebhookAttempt.__table__,
]


def serve_receiver(port: int, ready: Any, stop: Any, out: Any) -> None:
    """The receiver, in its own process (so it does not compete with the sender for the GIL)."""
    with LocalReceiver(port=port) as rx:
        ready.set()
        stop.wait()
        out.put((len(rx.requests), len(rx.unique_ids())))


class ReceiverProcess:
    def __init__(self) -> None:
        ctx = mp.get_context("fork")  # started before any thread; the child exits with os._exit
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._ready, self._stop, self._out = ctx.Event(), ctx.Event(), ctx.Queue()
        self._proc = ctx.Process(target=serve_receiver, args=(self.port, self._ready, self._stop, self._out))

    def __enter__(self) -> ReceiverProcess:
        self._proc.start()
        if not self._ready.wait(30):
            raise RuntimeError("the receiver did not start")
        return self

    def finish(self) -> tuple[int, int]:
        """Stop the receiver; (requests received, unique webhook-ids)."""
        self._stop.set()
        counts = self._out.get(timeout=30)
        self._proc.join(10)
        return counts

    def __exit__(self, *exc: object) -> None:
        if self._proc.is_alive():
            self._proc.kill()


def run(*, events: int, concurrency: int, database_url: str | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    url = database_url or f"sqlite:///{(tmp / 'bench.db').as_posix()}"
    schema = None
    if url.startswith("postgresql"):  # a private schema: other subscriptions must not get our events
        schema = f"bench_wh_{uuid.uuid4().hex[:8]}"
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"
    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=TABLES)
    sessions = make_sessionmaker(engine)
    settings = Settings(
        var_dir=tmp,
        database_url=url,
        webhook_allow_loopback=True,
        webhook_concurrency=concurrency,
        webhook_poll_interval_s=0.05,
    )
    with ReceiverProcess() as rx:
        with session_scope(sessions) as db_session:
            request = CreateWebhookRequest(url=rx.url, description="bench")
            service.create(
                db_session=db_session,
                request=request,
                policy=TargetPolicy(allow_loopback=True),
                box=load_secret_box(settings),
                max_subscriptions=settings.webhook_max_subscriptions,
            )
        t0 = time.perf_counter()
        with session_scope(sessions) as db_session:
            for i in range(events):
                service.enqueue_event(
                    db_session=db_session,
                    event_type="alert.created",
                    payload=sample_alert_data(f"al_{i}", topic_id="billing"),
                    topic_id="billing",
                    severity="high",
                )
        enqueue_s = time.perf_counter() - t0

        async def deliver() -> None:
            runner = DeliveryRunner(sessionmaker=sessions, settings=settings, worker_id="bench")
            try:
                await runner.drain(timeout_s=600)
            finally:
                await runner.aclose()

        t0 = time.perf_counter()
        asyncio.run(deliver())
        drain_s = time.perf_counter() - t0
        received, unique = rx.finish()
    with session_scope(sessions) as db_session:
        counts = queue_counts(db_session=db_session)
        latencies = np.array(db_session.scalars(select(tables.WebhookAttempt.latency_ms)).all() or [0.0])
    engine.dispose()
    if schema:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    per_s = counts.get("delivered", 0) / drain_s if drain_s else 0.0
    return {
        "events": events,
        "concurrency": concurrency,
        "database": url.split(":", 1)[0].split("+")[0],
        "enqueue_s": round(enqueue_s, 3),
        "time_to_empty_s": round(drain_s, 3),
        "deliveries_per_s": round(per_s, 1),
        "attempt_latency_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "attempt_latency_p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "requests_received": received,
        "unique_ids_received": unique,
        "statuses": counts,
        "bar_deliveries_per_s": BAR_PER_S,
        "passed": per_s >= BAR_PER_S and counts.get("delivered", 0) == events,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    result = run(events=args.events, concurrency=args.concurrency, database_url=args.database_url)
    ok = "ok" if result["passed"] else "FAIL"
    print_table(
        f"Webhook delivery: {result['events']} events, "
        f"concurrency {result['concurrency']}, {result['database']}",
        [
            ("deliveries/s", result["deliveries_per_s"], f">= {BAR_PER_S:g}", ok),
            ("time to empty the queue (s)", result["time_to_empty_s"], "", ""),
            ("enqueue, one transaction (s)", result["enqueue_s"], "", ""),
            ("attempt latency p50 (ms)", result["attempt_latency_p50_ms"], "", ""),
            ("attempt latency p99 (ms)", result["attempt_latency_p99_ms"], "", ""),
            (
                "requests / unique ids received",
                f"{result['requests_received']} / {result['unique_ids_received']}",
                "",
                "",
            ),
        ],
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
