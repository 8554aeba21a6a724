"""The cost of one classify request is bounded before any work, and the inference queue is shared fairly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from nlp_service.config import Settings
from nlp_service.inference.limits import DEFAULT_MAX_TEXT_CHARS as MAX_TEXT_CHARS
from nlp_service.inference.limits import DEFAULT_MAX_TEXTS as MAX_TEXTS
from nlp_service.main import create_app
from tests.auth.conftest import auth, make_key
from tests.conftest import FakeEngine, local_client, wait_until_ready


class SpyEngine(FakeEngine):
    """The fake engine, counting sentence segmentations; ``gate`` (when set) holds every encoder batch."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self.segmented = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()  # set when a batch reached the (held) encoder

    def sentences(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        self.segmented += len(texts)
        return super().sentences(texts)

    def analyze(self, texts: list[str]):  # type: ignore[no-untyped-def]
        if self.gate is not None:
            self.entered.set()
            self.gate.wait(30)
        return super().analyze(texts)


@pytest.fixture
def spy() -> SpyEngine:
    return SpyEngine()


@pytest.fixture
def client(app_settings: Settings, spy: SpyEngine) -> Iterator[TestClient]:
    with local_client(create_app(app_settings, engine=spy)) as test_client:
        wait_until_ready(test_client)
        yield test_client


def classify(client: TestClient, texts: list[str], *include: str, headers: dict | None = None):  # type: ignore[no-untyped-def]
    body = {"texts": texts, "include": list(include or ("sentiment",))}
    return client.post("/v1/classify", json=body, headers=headers or {})


def test_an_over_budget_sentences_request_is_refused_before_segmentation(
    client: TestClient, spy: SpyEngine, app_settings: Settings
) -> None:
    texts = [("the parcel was late and nobody answered " * 300)[:MAX_TEXT_CHARS]] * MAX_TEXTS
    t0 = time.perf_counter()
    response = classify(client, texts, "sentiment", "sentences")
    elapsed = time.perf_counter() - t0
    assert response.status_code == 422, response.text[:300]
    body = response.json()
    limit = app_settings.max_sentence_chars_per_request
    assert str(limit) in body["error"] and "NLP_MAX_SENTENCE_CHARS_PER_REQUEST" in body["error"]
    assert body["detail"][0]["field"] == "texts" and body["detail"][0]["limit"] == limit
    assert spy.segmented == 0 and spy.calls == []  # neither spaCy nor the encoder ran
    assert elapsed < 2.0
    # The same texts without sentences are within the ordinary limits.
    assert classify(client, texts[:4]).status_code == 200


def test_too_many_sentences_are_refused_before_encoding(
    client: TestClient, spy: SpyEngine, app_settings: Settings
) -> None:
    limit = app_settings.max_sentences_per_request
    text = "Bad. " * (3 * limit)  # the fake segmenter finds a sentence per one or two of these
    assert len(text) <= min(MAX_TEXT_CHARS, app_settings.max_sentence_chars_per_request)
    response = classify(client, [text], "sentiment", "sentences")
    assert response.status_code == 422, response.text[:300]
    assert "NLP_MAX_SENTENCES_PER_REQUEST" in response.json()["error"]
    assert spy.calls == []  # nothing was queued for the encoder
    within = classify(client, ["Late again. Support never answered!"], "sentiment", "sentences")
    assert within.status_code == 200
    sentences = within.json()["results"][0]["sentences"]
    assert sentences and all(s["sentiment"]["label"] == "negative" for s in sentences)


def test_one_client_flooding_the_queue_cannot_starve_another(
    app_settings: Settings, spy: SpyEngine, database_url: str
) -> None:
    settings = app_settings.model_copy(
        update={"max_queue_texts": 1000, "max_queue_texts_per_client": 300, "max_batch_size": 100}
    )
    flooder, other = make_key(database_url, ["classify"]), make_key(database_url, ["classify"])
    spy.gate = threading.Event()
    statuses: list[int] = []
    with local_client(create_app(settings, engine=spy)) as client:
        wait_until_ready(client)

        def flood() -> None:
            response = classify(client, [f"late parcel {i}" for i in range(100)], headers=auth(flooder))
            statuses.append(response.status_code)

        try:
            # Requests of one batch each: the first is held in the encoder, the rest queue (the whole queue,
            # without a per-client share) until the flooder gets 429.
            threads = [threading.Thread(target=flood) for _ in range(14)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 10
            while 429 not in statuses and time.monotonic() < deadline:
                time.sleep(0.01)
            assert 429 in statuses, "the flooder was never refused"
            small = {}
            thread = threading.Thread(
                target=lambda: small.update(r=classify(client, ["great support"], headers=auth(other)))
            )
            thread.start()
            time.sleep(0.3)
        finally:
            spy.gate.set()
        thread.join(10)
        for t in threads:
            t.join(10)
    assert small["r"].status_code == 200, small["r"].text[:300]
    assert statuses.count(200) >= 1 and statuses.count(429) >= 1


def test_texts_and_their_sentences_are_admitted_together_before_any_encoding(
    app_settings: Settings, spy: SpyEngine, database_url: str
) -> None:
    settings = app_settings.model_copy(
        update={"max_queue_texts": 100, "max_queue_texts_per_client": 100, "max_batch_size": 10}
    )
    filler, caller = make_key(database_url, ["classify"]), make_key(database_url, ["classify"])
    spy.gate = threading.Event()
    out: dict[str, object] = {}
    with local_client(create_app(settings, engine=spy)) as client:
        wait_until_ready(client)

        def post(name: str, texts: list[str], *include: str, key: str) -> threading.Thread:
            thread = threading.Thread(
                target=lambda: out.update({name: classify(client, texts, *include, headers=auth(key))})
            )
            thread.start()
            return thread

        try:
            held = post("held", ["late"] * 10, key=filler)  # one batch, held in the encoder
            assert spy.entered.wait(10)
            queued = post("queued", ["late"] * 85, key=filler)  # 85 of 100 queued: 15 free
            state = client.app.state.nlp  # type: ignore[attr-defined]
            deadline = time.monotonic() + 10
            while state.batcher.pending < 85 and time.monotonic() < deadline:
                time.sleep(0.01)
            # 6 texts fit, but with their 12 sentences they do not: refused at once, not after encoding.
            texts = ["Late again. Support never answered! The box was broken?"] * 6
            caller_thread = post("caller", texts, "sentiment", "sentences", key=caller)
            caller_thread.join(3)
            assert "caller" in out, "the request waited for the encoder instead of being refused"
            assert out["caller"].status_code == 429  # type: ignore[attr-defined]
        finally:
            spy.gate.set()
        for thread in (held, queued, caller_thread):
            thread.join(10)
    assert out["held"].status_code == out["queued"].status_code == 200  # type: ignore[attr-defined]
