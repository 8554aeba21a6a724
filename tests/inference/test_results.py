"""The one decode path: typed results from the heads' arrays, with the same decisions as ``Head.decide``."""

from __future__ import annotations

import numpy as np

from nlp_service.inference.heads import FeatureSpec, Head, HeadConfig
from nlp_service.inference.results import EmotionScore, decode
from tests.conftest import FakeEngine, FakeHit, FakeTopics

TEXT = "the delivery was late and support was rude, terrible"


def sigmoid_head(thresholds: list[float]) -> Head:
    n, dim = len(thresholds), 8
    config = HeadConfig(
        task="emotion",
        version="v1",
        kind="sigmoid",
        labels=[f"l{i}" for i in range(n)],
        features=FeatureSpec((0,)),
        encoder_name="enc",
        encoder_sha256="a" * 64,
        thresholds=thresholds,
    )
    weights = {
        "input_mean": np.zeros(dim, np.float32),
        "input_scale": np.ones(dim, np.float32),
        "dense.0.weight": np.ones((n, dim), np.float32),
        "dense.0.bias": np.zeros(n, np.float32),
    }
    return Head(config, weights)


def test_emotion_labels_are_the_heads_decisions_most_likely_first() -> None:
    thresholds = [0.2, 0.4, 0.6, 0.8]
    head = sigmoid_head(thresholds)
    probs = np.random.default_rng(0).uniform(size=(50, 4)).astype(np.float32)
    engine = FakeEngine()
    heads = {**engine.models.heads, "emotion": head}
    outputs = engine._analysis(TEXT).outputs
    for row, decided in zip(probs, head.decide(probs), strict=True):
        labels = decode(heads, {**outputs, "emotion": row}, []).emotion.labels
        assert [e.label for e in labels] == decided
        assert [e.probability for e in labels] == sorted((e.probability for e in labels), reverse=True)
        assert all(row[int(e.label[1:])] >= thresholds[int(e.label[1:])] for e in labels)


def test_decoded_result_is_rounded_and_decoded_once() -> None:
    analysis = FakeEngine()._analysis(TEXT)
    decoded = analysis.decoded
    assert decoded is analysis.decoded
    sentiment = decoded.sentiment
    assert sentiment.label == "negative"
    labels = ["negative", "neutral", "positive"]
    expected = {k: round(float(v), 4) for k, v in zip(labels, analysis.outputs["sentiment"], strict=True)}
    assert sentiment.probabilities == expected
    assert sentiment.score == round(expected["positive"] - expected["negative"], 4)
    emotion = decoded.emotion
    assert emotion.labels == [EmotionScore("anger", 0.6)]
    assert emotion.dominant == "anger" and emotion.intensity == emotion.intensities["anger"] == 0.9
    assert -1.0 <= emotion.valence <= 1.0 and 0.0 <= emotion.arousal <= 1.0
    assert [t.id for t in decoded.topics] == [h.id for h in FakeTopics().hits(TEXT)]


def test_topic_scores_are_rounded() -> None:
    engine = FakeEngine()
    hits = [FakeHit("billing_payments", "Billing", 0.123456)]
    decoded = decode(engine.models.heads, engine._analysis("x").outputs, hits)
    assert [(t.id, t.score) for t in decoded.topics] == [("billing_payments", 0.1235)]
