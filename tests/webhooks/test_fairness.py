"""One slow endpoint must not starve the others (finding 7): fair claims with a per-subscription in-flight
cap, DNS inside the send timeout, and a lease long enough that a slow send is never sent twice."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.webhooks import deliveries, service
from nlp_service.webhooks.runner import DeliveryRunner
from nlp_service.webhooks.safety import IPAddress, TargetPolicy
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.sender import Sender
from nlp_service.webhooks.tables import WebhookDelivery
from tests.webhooks.conftest import create_subscription, in_tx
from tests.webhooks.receiver import LocalReceiver

LOOPBACK = TargetPolicy(allow_loopback=True)


def subscribe(
    sessions: sessionmaker[Session], box: SecretBox, url: str, policy: TargetPolicy = LOOPBACK
) -> str:
    sub, _ = create_subscription(sessions, box, CreateWebhookRequest(url=url), policy)
    return sub.id


def ping(sessions: sessionmaker[Session], webhook_id: str, times: int = 1) -> list[str]:
    return [
        in_tx(sessions, lambda s: service.ping(db_session=s, webhook_id=webhook_id).id) for _ in range(times)
    ]


def test_lease_must_outlast_the_send_timeout() -> None:
    with pytest.raises(ValidationError, match="webhook_lease_s"):
        Settings(webhook_timeout_s=15, webhook_lease_s=20)
    with pytest.raises(ValidationError, match="webhook_max_in_flight_per_subscription"):
        Settings(webhook_max_in_flight_per_subscription=0)
    assert Settings(webhook_timeout_s=15, webhook_lease_s=30).webhook_lease_s == 30
    assert Settings().webhook_lease_s >= 2 * Settings().webhook_timeout_s


def test_tarpit_endpoint_does_not_starve_the_others(settings: Settings, sessions, box: SecretBox) -> None:
    """A tarpit with many queued pings, queued first, and a normal endpoint: 4 send slots, cap 2."""
    cfg = settings.model_copy(
        update={
            "webhook_concurrency": 4,
            "webhook_max_in_flight_per_subscription": 2,
            "webhook_timeout_s": 2.5,
        }
    )
    with LocalReceiver(delay_s=10) as tarpit, LocalReceiver() as normal:
        stuck = subscribe(sessions, box, tarpit.url)
        ok = subscribe(sessions, box, normal.url)
        ping(sessions, stuck, times=12)
        expected = set(ping(sessions, ok, times=6))

        async def run() -> float:
            runner = DeliveryRunner(sessionmaker=sessions, settings=cfg, worker_id="fair")
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                while len(normal.requests) < len(expected) and loop.time() - started < 2.0:
                    if await runner.tick() is None:
                        await asyncio.sleep(cfg.webhook_poll_interval_s)
                return loop.time() - started
            finally:
                await runner.aclose(grace_s=0)

        elapsed = asyncio.run(run())
        assert len(normal.requests) == len(expected), (elapsed, len(tarpit.requests))
        assert len(tarpit.requests) <= 2  # the tarpit never held more than its cap of the 4 slots
    assert elapsed < cfg.webhook_timeout_s  # delivered while the tarpit was still stuck
    statuses = in_tx(sessions, lambda s: {d: s.get(WebhookDelivery, d).status for d in expected})
    assert set(statuses.values()) == {"delivered"}


class SlowOnceResolver:
    """127.0.0.1 for ``slow.test``; the second lookup (the first send's) takes ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, hostname: str, port: int) -> list[IPAddress]:
        with self._lock:
            self.calls += 1
            call = self.calls
        if call == 2:
            time.sleep(self.delay_s)
        return [ipaddress.ip_address("127.0.0.1")]


def test_slow_dns_counts_against_the_timeout_and_nothing_is_sent_twice(
    settings: Settings, sessions, box: SecretBox
) -> None:
    """DNS that takes longer than the lease used to run outside the timeout: a second worker took the
    expired lease and sent, then the first one sent too. Now the slow lookup ends the attempt at the timeout,
    the retry goes through once."""
    cfg = settings.model_copy(update={"webhook_timeout_s": 1.0, "webhook_lease_s": 2.0})
    resolver = SlowOnceResolver(delay_s=2.6)
    policy = TargetPolicy(allow_loopback=True, resolver=resolver)
    with LocalReceiver() as rx:
        webhook_id = subscribe(sessions, box, f"http://slow.test:{rx.port}/hook", policy)
        [delivery_id] = ping(sessions, webhook_id)

        async def run() -> None:
            runners = [
                DeliveryRunner(
                    sessionmaker=sessions,
                    settings=cfg,
                    worker_id=f"w{i}",
                    sender=Sender(timeout_s=cfg.webhook_timeout_s, policy=policy),
                )
                for i in range(2)
            ]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 4.5

            async def drive(runner: DeliveryRunner) -> None:
                while loop.time() < deadline:
                    if await runner.tick() is None:
                        await asyncio.sleep(cfg.webhook_poll_interval_s)

            try:
                await asyncio.gather(*(drive(r) for r in runners))
            finally:
                for runner in runners:
                    await runner.aclose(grace_s=0.5)

        asyncio.run(run())
        assert len(rx.requests) == 1, [r.at for r in rx.requests]
    delivery = in_tx(sessions, lambda s: deliveries.get_delivery(db_session=s, delivery_id=delivery_id))
    assert delivery.status == "delivered"
    log = delivery.attempt_log
    assert [a.number for a in log] == [1, 2] and "timed out" in (log[0].error or "")
    assert log[0].latency_ms < 1500  # the lookup was cut at the 1 s timeout


def test_tarpit_connections_do_not_fill_the_pool_of_other_sends() -> None:
    """The sender's connection pool is split in shards of 8: requests to a tarpit, interleaved with quick
    ones, must not pile up in one shard and leave the next quick request waiting for a free connection."""
    with LocalReceiver(delay_s=10) as tarpit, LocalReceiver() as normal:

        async def go() -> list[float]:
            sender = Sender(timeout_s=3, policy=LOOPBACK, max_connections=16)  # 2 shards x 8 connections
            body, secrets = b"{}", ["whsec_" + "A" * 44]
            stuck = []
            try:
                for i in range(8):  # a tarpit request, then a quick one, and so on
                    stuck.append(
                        asyncio.create_task(
                            sender.send(url=tarpit.url, msg_id=f"t{i}", body=body, secrets=secrets)
                        )
                    )
                    await asyncio.sleep(0.05)
                    assert (
                        await sender.send(url=normal.url, msg_id=f"n{i}", body=body, secrets=secrets)
                    ).success
                latencies = []
                for i in range(4):  # the tarpit holds 8 of the 16 connections; these must not wait for them
                    result = await sender.send(url=normal.url, msg_id=f"m{i}", body=body, secrets=secrets)
                    assert result.success, result
                    latencies.append(result.latency_ms)
                return latencies
            finally:
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*stuck, return_exceptions=True)
                await sender.aclose()

        latencies = asyncio.run(go())
    assert max(latencies) < 1000, latencies
