"""TopicModel: zero-shot, learned (taught examples), search-defined and sub-topics; sentence-aware tagging;
storage round trip. A fake bag-of-words embedding keeps it exact and fast."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from nlp_service.topics.model import LEARNED, QUERY, ZERO_SHOT, TopicModel
from nlp_service.topics.scorer import StalePrototypesError
from nlp_service.topics.taxonomy import Taxonomy, TaxonomyError, parse_taxonomy
from tests.topics.test_scorer import TAXONOMY, fake_embed

TAX_POSITIVES = [
    "sales tax charged twice",
    "wrong sales tax on receipt",
    "tax amount too high",
    "overcharged tax state",
    "tax added on tax free item",
    "sales tax rate wrong",
]


def taxonomy_with(*extra: dict[str, Any]) -> Taxonomy:
    data = copy.deepcopy(TAXONOMY)
    data["topics"].extend(extra)
    return parse_taxonomy(data)


def ids(hits: list[Any]) -> list[str]:
    return [h.id for h in hits]


def test_methods_follow_the_definition() -> None:
    taxonomy = taxonomy_with(
        {"id": "tax", "name": "Tax", "description": "sales tax", "positives": TAX_POSITIVES},
        {"id": "few", "name": "Few", "description": "few examples", "positives": TAX_POSITIVES[:2]},
        {
            "id": "ohio",
            "name": "Ohio",
            "description": "x",
            "query": {"text": "tax", "filters": {"region": "OH"}},
        },
    )
    model = TopicModel.build(taxonomy, fake_embed)
    assert model.methods == [ZERO_SHOT, ZERO_SHOT, ZERO_SHOT, LEARNED, ZERO_SHOT, QUERY]
    quality = model.quality()
    assert quality["tax"].method == LEARNED and quality["tax"].n_positive >= 6
    assert quality["tax"].cv_precision is not None and 0.0 <= quality["tax"].cv_precision <= 1.0
    assert quality["few"].cv_precision is None  # too few taught examples: stays zero-shot


def test_learned_topic_tags_what_it_was_taught() -> None:
    taxonomy = taxonomy_with(
        {
            "id": "tax",
            "name": "Tax",
            "description": "sales tax",
            "positives": TAX_POSITIVES,
            "negatives": ["parcel delivery late"],
        }
    )
    model = TopicModel.build(taxonomy, fake_embed)
    [taxed, parcel] = model.predict(
        fake_embed(["the sales tax on my receipt was wrong", "courier lost parcel"])
    )
    assert "tax" in ids(taxed)
    assert "tax" not in ids(parcel) and "delivery" in ids(parcel)
    assert all(0.0 <= h.score <= 1.0 for h in taxed)


def test_search_topic_counts_only_comments_its_filters_pass() -> None:
    query = {"text": "sales tax overcharged", "filters": {"region": ["OH", "KY"]}}
    model = TopicModel.build(
        taxonomy_with({"id": "tax_oh", "name": "Tax OH", "description": "x", "query": query}), fake_embed
    )
    [hits] = model.predict(fake_embed(["overcharged sales tax again"]))
    assert "tax_oh" in ids(hits)
    assert "tax_oh" in ids(model.keep(hits, {"region": "OH"}))
    assert "tax_oh" not in ids(model.keep(hits, {"region": "CA"}))
    assert "tax_oh" not in ids(model.keep(hits, {}))  # no region known: the filter does not pass
    assert model.allows("delivery", {})  # other topics have no filters


def test_sub_topic_also_tags_its_parent() -> None:
    sub = {
        "id": "card",
        "name": "Card",
        "description": "card declined payment",
        "parent": "billing",
        "examples": ["card declined", "payment card refused"],
    }
    model = TopicModel.build(taxonomy_with(sub), fake_embed)
    [hits] = model.predict(fake_embed(["my card declined at payment"]))
    assert "card" in ids(hits) and "billing" in ids(hits)
    with pytest.raises(TaxonomyError, match="two levels"):
        taxonomy_with(sub, {**sub, "id": "card_sub", "parent": "card"})


def test_a_comment_gets_each_topic_one_of_its_sentences_carries() -> None:
    model = TopicModel.build(taxonomy_with(), fake_embed)
    text = ["courier lost parcel", "support agent rude email reply slow"]
    whole = fake_embed([" ".join(text)])
    [without] = model.predict(whole)
    [with_sentences] = model.predict(whole, sentences=[fake_embed(text)])
    assert set(ids(with_sentences)) >= {"delivery", "support"}
    assert set(ids(without)) <= set(ids(with_sentences))
    # a row without sentences (None) is tagged as a whole
    assert model.predict(whole, sentences=[None]) == [without]


def test_storage_round_trip_and_staleness() -> None:
    taxonomy = taxonomy_with(
        {"id": "tax", "name": "Tax", "description": "sales tax", "positives": TAX_POSITIVES}
    )
    model = TopicModel.build(taxonomy, fake_embed, key="enc")
    loaded = TopicModel.from_bytes(taxonomy, model.to_bytes(), version=7, key="enc")
    x = fake_embed(["sales tax wrong", "courier lost parcel", "nothing at all"])
    assert loaded.predict(x) == model.predict(x) and loaded.version == 7
    assert loaded.quality() == model.quality()
    changed = taxonomy_with(
        {"id": "tax", "name": "Tax", "description": "sales tax", "positives": TAX_POSITIVES[:5]}
    )
    with pytest.raises(StalePrototypesError):
        TopicModel.from_bytes(changed, model.to_bytes())


def test_shape_is_checked() -> None:
    model = TopicModel.build(taxonomy_with(), fake_embed)
    with pytest.raises(ValueError, match="embeddings"):
        model.predict(np.zeros((2, 3), np.float32))
    assert model.predict(np.zeros((0, 512), np.float32)) == []


def test_taught_topics_spread_their_labels_over_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    import nlp_service.topics.model as model_module

    calls: list[tuple[np.ndarray, np.ndarray]] = []
    real = model_module.spread_labels

    def spy(nodes: np.ndarray, membership: np.ndarray, background: np.ndarray) -> Any:
        calls.append((nodes, membership))
        return real(nodes, membership, background)

    monkeypatch.setattr(model_module, "spread_labels", spy)
    refunds = [
        "refund never came",
        "refund still missing",
        "waiting for my refund",
        "refund denied",
        "no refund",
    ]
    taxonomy = taxonomy_with(
        {"id": "tax", "name": "Tax", "description": "sales tax", "positives": TAX_POSITIVES},
        {"id": "refund", "name": "Refund", "description": "refund money back", "positives": refunds},
    )
    background = fake_embed(["vat on my receipt wrong", "sales tax vat", "refund late", "parcel late"] * 3)
    model = TopicModel.build(taxonomy, fake_embed, background=background)
    [(nodes, membership)] = calls  # once for all taught topics: their examples, then their priors
    assert nodes.shape[0] == len(TAX_POSITIVES) + len(refunds) + 2
    assert membership.sum(axis=0).tolist() == [0, 0, 0, len(TAX_POSITIVES) + 1, len(refunds) + 1]
    [taxed, refunded] = model.predict(fake_embed(["sales tax wrong on receipt", "my refund never came"]))
    assert ids(taxed)[0] == "tax" and ids(refunded)[0] == "refund"
    assert TopicModel.build(taxonomy, fake_embed).methods == model.methods  # no background: no spreading
