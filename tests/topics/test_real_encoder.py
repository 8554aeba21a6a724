"""The shipped taxonomy with the real encoder (slow: loads all-MiniLM-L6-v2)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from nlp_service.config import REPO_ROOT, default_encoder_path
from nlp_service.topics import TopicScorer, load_taxonomy, prototypes_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def predict() -> Callable[[str], set[str]]:
    from nlp_service.inference.encoder import Encoder

    encoder = Encoder(default_encoder_path())
    path = REPO_ROOT / "models" / "topics" / "taxonomy.json"
    taxonomy = load_taxonomy(path)

    def embed(texts: list[str]) -> np.ndarray:
        return encoder.encode(texts).embedding

    scorer = TopicScorer.from_taxonomy(taxonomy, embed)
    shipped = TopicScorer.load(prototypes_path(path), taxonomy, encoder_sha256=encoder.info.sha256)
    assert abs(shipped.text_embeddings - scorer.text_embeddings).max() < 1e-4

    def run(text: str) -> set[str]:
        return {hit.id for hit in scorer.predict(embed([text]))[0]}

    return run


def test_late_delivery_and_silent_support(predict: Callable[[str], set[str]]) -> None:
    topics = predict("The delivery was late and support never answered my emails.")
    assert {"delivery_shipping", "customer_support"} <= topics


def test_tax_on_full_price_is_pricing(predict: Callable[[str], set[str]]) -> None:
    topics = predict("They charged me sales tax on the full price instead of the discounted sale price.")
    assert "pricing_promotions" in topics
