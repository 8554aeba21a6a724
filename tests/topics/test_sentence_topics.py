"""Sentence-aware topics with the real engine and the shipped taxonomy (slow: loads all-MiniLM-L6-v2)."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_service.inference.engine import Engine

pytestmark = pytest.mark.slow


def topics(engine: Engine, text: str, *, sentences: bool) -> dict[str, float]:
    encoded = engine.encoder.encode([text], sentences=sentences)
    return {hit.id: hit.score for hit in engine.analyze_encoded(encoded)[0].topics}


def test_fast_delivery_but_crashing_app_gets_both_topics(real_engine: Engine) -> None:
    text = "Delivery was fast but the app keeps crashing"
    with_sentences = topics(real_engine, text, sentences=True)
    assert {"delivery_shipping", "app_website"} <= set(with_sentences)
    # The whole comment scores delivery just over its bar (0.466 against 0.455); its clause clearly (0.57).
    without = topics(real_engine, text, sentences=False)
    assert with_sentences["delivery_shipping"] > without.get("delivery_shipping", 0.0) + 0.05


def test_a_sentence_carries_a_topic_the_whole_comment_misses(real_engine: Engine) -> None:
    text = "The courier was quick and friendly. Sadly the app crashes every time I try to log in."
    assert "delivery_shipping" not in topics(real_engine, text, sentences=False)
    assert {"delivery_shipping", "app_website"} <= set(topics(real_engine, text, sentences=True))


def test_analysis_carries_the_sentence_embeddings(real_engine: Engine) -> None:
    assert real_engine.settings.topic_sentences
    two, one = real_engine.analyze(["The courier was quick and friendly. The app crashes.", "Great service."])
    assert two.sentences is not None and two.sentences.shape == (2, real_engine.encoder.info.dim)
    np.testing.assert_allclose(np.linalg.norm(two.sentences, axis=1), 1.0, rtol=1e-5)
    assert one.sentences is None


def test_sentence_pooling_matches_torch(real_engine: Engine) -> None:
    """ONNX Runtime's last-layer token states give torch's sentence embeddings."""
    text = ["Delivery was fast. The app keeps crashing when I pay.", "Short one here."]
    served = real_engine.encoder.encode(text, sentences=True).sentences
    reference = real_engine.encoder.encode(text, sentences=True, runtime="torch").sentences
    assert served is not None and reference is not None
    assert served[1] is None and reference[1] is None
    assert served[0] is not None and reference[0] is not None
    np.testing.assert_allclose(served[0], reference[0], atol=1e-3)
