"""End to end on the real encoder, heads and taxonomy shipped under models/."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

pytestmark = pytest.mark.slow

LATE = "The delivery was late and support never answered my emails."


def test_classify_real_model(client) -> None:
    response = client.post("/v1/classify", json={"texts": [LATE, "Absolutely love this app, thank you!"]})
    assert response.status_code == 200, response.text
    body = response.json()
    first, second = body["results"]
    assert [r["index"] for r in body["results"]] == [0, 1]
    assert first["sentiment"]["label"] == "negative"
    assert first["sentiment"]["score"] < 0
    assert second["sentiment"]["label"] == "positive"
    topic_ids = {t["id"] for t in first["topics"]}
    assert {"delivery_shipping", "customer_support"} <= topic_ids
    emotion = first["emotion"]
    assert emotion["dominant"] in {"anger", "fear", "joy", "sadness"}
    assert 0.0 <= emotion["intensity"] <= 1.0
    assert len(emotion["probabilities"]) == 28
    assert -1.0 <= emotion["valence"] <= 1.0
    assert second["emotion"]["valence"] > first["emotion"]["valence"]
    assert "embedding" not in first and "sentences" not in first
    versions = body["model_versions"]
    assert {"encoder", "sentiment", "emotion", "intensity", "valence", "topics"} <= set(versions)


def test_sentences_each_get_their_own_sentiment_and_topics(client) -> None:
    text = "Fast delivery. But the staff in the store were rude to me."
    response = client.post("/v1/classify", json={"texts": [text], "include": ["sentences"]})
    assert response.status_code == 200, response.text
    sentences = response.json()["results"][0]["sentences"]
    assert len(sentences) == 2
    labels = [s["sentiment"]["label"] for s in sentences]
    assert labels[0] == "positive" and labels[1] == "negative"
    assert sentences[1]["text"].startswith("But the staff")


def test_embedding_is_the_normalised_search_vector(client, real_engine) -> None:
    response = client.post("/v1/classify", json={"texts": [LATE], "include": ["embedding"]})
    vector = np.asarray(response.json()["results"][0]["embedding"])
    assert vector.shape == (384,)
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-3
    direct = real_engine.embed([LATE])[0]
    assert float(vector @ direct) > 0.9999


def test_truncation_is_reported_per_item(client) -> None:
    long_text = "the parcel arrived late again " * 300  # 9,000 characters, ~1,500 tokens
    response = client.post("/v1/classify", json={"texts": ["short one", long_text], "include": ["sentiment"]})
    results = response.json()["results"]
    assert [r["truncated"] for r in results] == [False, True]


def test_concurrent_requests_keep_their_order(client) -> None:
    texts = [f"order {i}: the package was late by {i} days" for i in range(24)]

    def call(offset: int) -> list[float]:
        chunk = texts[offset : offset + 6]
        r = client.post("/v1/classify", json={"texts": chunk, "include": ["embedding"]})
        assert r.status_code == 200
        return [np.asarray(x["embedding"]) for x in r.json()["results"]]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        chunks = list(pool.map(call, range(0, 24, 6)))
    got = np.stack([v for chunk in chunks for v in chunk])
    expected = client.app.state.nlp.engine.embed(texts)
    assert np.allclose(got, expected, atol=1e-4)


def test_health_info_metrics(client) -> None:
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/info").json()
    assert info["encoder"]["sha256"].startswith("53aa5117")
    assert info["limits"]["max_texts_per_request"] == 256
    client.post("/v1/classify", json={"texts": ["hello"]})
    metrics = client.get("/metrics").text
    assert "nlp_inference_batch_size_count" in metrics
    assert 'nlp_http_requests_total{method="POST",route="/v1/classify",status="200"}' in metrics
