"""End to end through ``nlp_service.client`` against a real uvicorn server (the real app on the tests' fake
engine, real DB): the demo loader ingests two weeks of comments with an incident through the client, then the
sync and async clients page through comments and alerts, classify, search, run detection and acknowledge an
alert, with typed results; errors come as ``ApiError``. A webhook signed by the service verifies with
``verify_webhook`` (``standardwebhooks``) and a tampered one does not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from nlp_service.classify.schemas import ClassifyResponse
from nlp_service.client import ApiError, AsyncClient, Client, verify_webhook
from nlp_service.demo.generator import DemoConfig, Incident, write_jsonl
from nlp_service.demo.loader import load
from nlp_service.webhooks.signing import generate_secret, sign_headers
from tests.servers import running_server

START = date(2024, 3, 4)
AT = datetime(2024, 3, 18, tzinfo=UTC)
TWO_WEEKS_S = 14 * 86400


def server_env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "NLP_DATABASE_URL": database_url,
        "NLP_VAR_DIR": str(tmp_path / "var"),
        "NLP_MIGRATE_ON_START": "false",
        "NLP_SEARCH_SAVE_INTERVAL_S": "0",
        **extra,
    }


@pytest.fixture
def server_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    env = server_env(
        database_url,
        tmp_path,
        NLP_RUN_WORKER_IN_PROCESS="false",
        NLP_DETECT_SYNC_MAX_LOOKBACK_S=str(TWO_WEEKS_S),
    )
    with running_server(env, tmp_path / "server.log") as url:
        yield url


def test_client_against_a_real_server(server_url: str, tmp_path: Path) -> None:
    path = tmp_path / "demo.jsonl"
    incident = Incident(day=date(2024, 3, 14), region="eu-west", count=60)
    n = write_jsonl(DemoConfig(n=2000, seed=11, start=START, days=14, incident=incident), path)
    loaded = load(path, server_url, batch_size=250, concurrency=2, progress=False)  # through the client
    assert (loaded.sent, loaded.created) == (n, n)

    with Client(server_url) as client:
        ids = [c.id for c in client.iter_comments(page_size=300)]
        assert len(ids) == len(set(ids)) == n
        eu = list(client.iter_comments(page_size=100, region="eu-west"))
        assert eu and all(c.region == "eu-west" for c in eu)

        result = client.classify(["The parcel was late and support never answered"])
        assert isinstance(result, ClassifyResponse) and result.results[0].sentiment is not None
        hits = client.search("charged tax on the sale price", k=3)
        assert len(hits.results) == 3

        detection = client.detect(at=AT.isoformat(), lookback_s=TWO_WEEKS_S)
        assert detection.alerts_created >= 1
        listed = client.list_alerts(limit=500)
        paged = [a.id for a in client.iter_alerts(page_size=1)]
        assert paged == [a.id for a in listed.alerts] and len(paged) == listed.total >= 1
        incidents = list(client.iter_incidents(page_size=1))
        assert [i.id for i in incidents] == [i.id for i in client.list_incidents(limit=500).incidents]
        assert incidents and "eu-west" in incidents[0].headline
        assert client.get_incident(incidents[0].id) == incidents[0]
        acked = client.acknowledge_alert(paged[0], note="looking")
        assert (acked.status, acked.note) == ("acknowledged", "looking")
        with pytest.raises(ApiError) as caught:
            client.acknowledge_alert(paged[0])
        assert caught.value.status_code == 409
        with pytest.raises(ApiError) as caught:
            client.get_alert("alr_nope")
        assert caught.value.status_code == 404 and caught.value.error_type
        with pytest.raises(ApiError) as caught:
            client.classify([""])
        assert caught.value.status_code == 422 and caught.value.detail[0]["field"] == "texts[0]"

    async def async_side() -> tuple[list[str], str]:
        async with AsyncClient(server_url) as client:
            alert_ids = [a.id async for a in client.iter_alerts(page_size=2, status=["acknowledged"])]
            first = await client.get_alert(paged[0])
            taken = await client.acknowledge_incident(incidents[0].id, note="on it")
            assert taken.status == "acknowledged"
            acked = [i.id async for i in client.iter_incidents(page_size=1, status=["acknowledged"])]
            assert acked == [taken.id]
            return alert_ids, first.status

    acknowledged, status = asyncio.run(async_side())
    assert acknowledged == [paged[0]] and status == "acknowledged"


@pytest.fixture
def server_with_worker(database_url: str, tmp_path: Path) -> Iterator[str]:
    env = server_env(database_url, tmp_path, NLP_RUN_WORKER_IN_PROCESS="true", NLP_JOB_POLL_S="0.2")
    with running_server(env, tmp_path / "server.log") as url:
        yield url


def test_import_a_file_through_the_client(server_with_worker: str, tmp_path: Path) -> None:
    path = tmp_path / "feedback.csv"
    path.write_text(
        "id,text,created_at,source,region\n"
        "c-1,The parcel was late again,2024-03-01T10:00:00Z,survey,eu-west\n"
        "c-2,Support solved it in minutes,2024-03-01T11:00:00Z,chat,us-east\n"
        "c-3,,2024-03-01T12:00:00Z,chat,us-east\n"
    )
    with Client(server_with_worker) as client:
        queued = client.import_comments(path)
        assert queued.kind == "import" and queued.params["filename"] == "feedback.csv"
        job = client.wait_job(queued.id, poll_s=0.2, timeout_s=60)
        assert job.status == "succeeded", job
        assert (job.result or {}).get("created") == 2 and job.progress.done == 3, job.result
        assert client.get_comment("c-1").region == "eu-west"
        with pytest.raises(ValueError, match="format"):
            client.import_comments(b"id,text")
        with pytest.raises(ApiError) as caught:
            client.import_comments(b"", format="csv")
        assert caught.value.status_code == 422
        with pytest.raises(ApiError) as caught:
            client.get_job("job_nope")
        assert caught.value.status_code == 404

    async def async_side() -> str:
        async with AsyncClient(server_with_worker) as client:
            row = {"id": "c-4", "text": "Great app", "created_at": "2024-03-02T09:00:00Z", "source": "app"}
            body = (json.dumps(row) + "\n").encode()
            queued = await client.import_comments(body, format="jsonl")
            return (await client.wait_job(queued.id, poll_s=0.2, timeout_s=60)).status

    assert asyncio.run(async_side()) == "succeeded"


def test_verify_webhook_accepts_the_services_signature() -> None:
    secret = generate_secret()
    body = (
        b'{"id":"evt_1","type":"webhook.ping","timestamp":"2026-01-01T00:00:00Z","version":"2026-11-01",'
        b'"data":{"webhook_id":"wh_1","message":"ping"}}'
    )
    headers = sign_headers([secret], "evt_1", body)
    event = verify_webhook(body, headers, secret)
    assert event["type"] == "webhook.ping" and event["data"]["webhook_id"] == "wh_1"
    assert verify_webhook(body, headers, [generate_secret(), secret])["id"] == "evt_1"  # during a rotation
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        verify_webhook(body.replace(b"ping", b"pong"), headers, secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, generate_secret())
