"""Claiming the outbox: limits, leases, disjoint claims by concurrent workers, token-guarded results."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from nlp_service.hardening.secretbox import SecretBox
from nlp_service.timestamps import utcnow
from nlp_service.webhooks import deliveries, service
from nlp_service.webhooks.claims import claim_due, release
from nlp_service.webhooks.payloads import sample_alert_data
from nlp_service.webhooks.recording import record_results
from nlp_service.webhooks.retry import RetryPolicy
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.sender import SendResult
from tests.webhooks.conftest import create_subscription, in_tx


def queue(sessions: sessionmaker[Session], n: int) -> None:
    box = SecretBox([SecretBox.generate_key()])  # nothing is sent here: any key will do
    create_subscription(sessions, box, CreateWebhookRequest(url="http://127.0.0.1:9999/hook"))
    for i in range(n):
        in_tx(
            sessions,
            lambda s, i=i: service.enqueue_event(
                db_session=s, event_type="alert.created", payload=sample_alert_data(str(i))
            ),
        )


def claim(sessions, worker: str, limit: int, lease_s: float = 60, now=None):  # type: ignore[no-untyped-def]
    return in_tx(
        sessions, lambda s: claim_due(db_session=s, worker_id=worker, limit=limit, lease_s=lease_s, now=now)
    )


def test_limit_and_no_double_claim(sessions) -> None:
    queue(sessions, 10)
    first = claim(sessions, "a", 3)
    second = claim(sessions, "b", 5)
    rest = claim(sessions, "c", 100)
    ids = [c.delivery_id for c in first + second + rest]
    assert (len(first), len(second), len(rest)) == (3, 5, 2)
    assert len(set(ids)) == 10
    assert claim(sessions, "d", 100) == []
    assert all(c.attempt_number == 1 and c.secrets for c in first)


def test_concurrent_claimers_get_disjoint_rows(sessions) -> None:
    """Two workers in open transactions at the same time (SKIP LOCKED on PostgreSQL)."""
    queue(sessions, 6)
    with sessions() as a, sessions() as b:
        got_a = claim_due(db_session=a, worker_id="a", limit=4, lease_s=60)
        got_b = claim_due(db_session=b, worker_id="b", limit=4, lease_s=60) if _is_pg(b) else []
        a.commit()
        if not _is_pg(b):  # SQLite serializes writers: the second claimer runs after the first commits
            got_b = claim_due(db_session=b, worker_id="b", limit=4, lease_s=60)
        b.commit()
    assert len(got_a) == 4 and len(got_b) == 2
    assert not {c.delivery_id for c in got_a} & {c.delivery_id for c in got_b}


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def test_expired_lease_is_reclaimed_and_stale_result_ignored(sessions) -> None:
    queue(sessions, 1)
    [stale] = claim(sessions, "dead-worker", 1, lease_s=0.5)
    assert claim(sessions, "w2", 1) == []  # leased
    [fresh] = claim(sessions, "w2", 1, now=utcnow() + timedelta(seconds=1))  # lease expired
    # the expired claim was an attempt (its worker may have died mid-send): the re-claim is the next one
    assert fresh.delivery_id == stale.delivery_id and fresh.attempt_number == stale.attempt_number + 1
    ok = SendResult(200, 5.0)
    policy = RetryPolicy(schedule_s=(0,))
    statuses = in_tx(
        sessions,
        lambda s: record_results(
            db_session=s, outcomes=[(stale, ok)], policy=policy, worker_id="dead-worker"
        ),
    )
    assert statuses == ["lost"]  # the old claimer's result does not overwrite the new claim
    statuses = in_tx(
        sessions,
        lambda s: record_results(db_session=s, outcomes=[(fresh, ok)], policy=policy, worker_id="w2"),
    )
    assert statuses == ["delivered"]
    delivery = in_tx(sessions, lambda s: deliveries.get_delivery(db_session=s, delivery_id=fresh.delivery_id))
    assert [a.number for a in delivery.attempt_log] == [1, 2]  # both attempts are logged


def test_attempts_are_counted_at_claim_so_a_dying_worker_cannot_retry_forever(sessions) -> None:
    """A worker that dies mid-send leaves only its claim: every re-claim is a new attempt, and once the
    schedule is used up the delivery is dead instead of being sent again."""
    queue(sessions, 1)
    now = utcnow()
    numbers = []
    for i in range(3):  # claimed, the worker dies, the lease expires, another worker claims it
        [c] = claim(sessions, f"w{i}", 1, lease_s=1, now=now + timedelta(seconds=2 * i))
        numbers.append(c.attempt_number)
        stored = in_tx(
            sessions, lambda s, c=c: deliveries.get_delivery(db_session=s, delivery_id=c.delivery_id)
        )
        assert stored.attempts == c.attempt_number  # counted when claimed, not when a result is recorded
    assert numbers == [1, 2, 3]
    later = now + timedelta(seconds=10)
    assert (
        in_tx(
            sessions,
            lambda s: claim_due(db_session=s, worker_id="w9", limit=5, lease_s=1, now=later, max_attempts=3),
        )
        == []
    )
    dead = in_tx(sessions, lambda s: deliveries.get_delivery(db_session=s, delivery_id=c.delivery_id))
    assert dead.status == "dead" and dead.attempts == 3 and "lease" in (dead.last_error or "")


def test_released_claims_give_their_attempt_back(sessions) -> None:
    queue(sessions, 2)
    claims = claim(sessions, "w", 2)
    assert in_tx(sessions, lambda s: release(db_session=s, claims=claims)) == 2
    again = claim(sessions, "w2", 2)
    assert sorted(c.attempt_number for c in again) == [1, 1]


def test_claims_take_turns_and_respect_the_cap_across_workers(sessions) -> None:
    """Subscription A queued 6 first, B 2 after: B is not behind A, and A never has more than 2 claimed."""
    queue(sessions, 6)  # subscription A
    box = SecretBox([SecretBox.generate_key()])
    b, _ = create_subscription(sessions, box, CreateWebhookRequest(url="http://127.0.0.1:9998/other"))
    for _ in range(2):
        in_tx(sessions, lambda s: service.ping(db_session=s, webhook_id=b.id))

    def fair(worker: str, limit: int):  # type: ignore[no-untyped-def]
        return in_tx(
            sessions,
            lambda s: claim_due(db_session=s, worker_id=worker, limit=limit, lease_s=60, per_subscription=2),
        )

    first = fair("w1", 2)  # round-robin: each subscription's oldest, although A's six are all older
    assert len({c.subscription_id for c in first}) == 2 and b.id in {c.subscription_id for c in first}
    second = fair("w2", 10)  # another worker: A's live claims count against its cap
    per_sub: dict[str, int] = {}
    for c in first + second:
        per_sub[c.subscription_id] = per_sub.get(c.subscription_id, 0) + 1
    assert per_sub[b.id] == 2 and sorted(per_sub.values()) == [2, 2]
    assert fair("w3", 10) == []  # both at their cap until results are recorded or leases expire
