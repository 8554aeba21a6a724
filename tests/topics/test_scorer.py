"""TopicScorer and taxonomy loading with a fake, deterministic bag-of-words embedding."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from nlp_service.topics import (
    StalePrototypesError,
    Taxonomy,
    TaxonomyError,
    TopicHit,
    TopicScorer,
    load_taxonomy,
    micro_f1,
    parse_taxonomy,
    prototypes_path,
    tune_thresholds,
)

DIM = 512
STOPWORDS = {"the", "a", "and", "my", "i", "was", "to", "of", "is", "it", "never", "me", "for", "on"}


def fake_embed(texts: list[str]) -> np.ndarray:
    """L2-normalised hashed bag of words: texts sharing words are similar, others orthogonal-ish."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z]+", text.lower()):
            if word not in STOPWORDS:
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
        norm = np.linalg.norm(out[i])
        if norm:
            out[i] /= norm
    return out


TAXONOMY = {
    "name": "fixture",
    "version": "1",
    "default_threshold": 0.3,
    "topics": [
        {
            "id": "delivery",
            "name": "Delivery",
            "description": "parcel delivery courier",
            "examples": ["parcel arrived late", "courier lost parcel", "delivery late"],
        },
        {
            "id": "support",
            "name": "Support",
            "description": "support agent email reply",
            "examples": ["support agent rude", "email reply slow", "support never answered emails"],
        },
        {
            "id": "billing",
            "name": "Billing",
            "description": "billing invoice charged card",
            "examples": ["charged twice card", "invoice wrong"],
            "threshold": 0.35,
        },
    ],
}


@pytest.fixture
def taxonomy() -> Taxonomy:
    return parse_taxonomy(json.loads(json.dumps(TAXONOMY)))


@pytest.fixture
def scorer(taxonomy: Taxonomy) -> TopicScorer:
    return TopicScorer.from_taxonomy(taxonomy, fake_embed)


def ids(hits: list[TopicHit]) -> list[str]:
    return [h.id for h in hits]


def test_scores_shape_and_range(scorer: TopicScorer) -> None:
    scores = scorer.score(fake_embed(["parcel late", "invoice charged", "nothing relevant here"]))
    assert scores.shape == (3, 3)
    assert np.all(scores <= 1.0 + 1e-6) and np.all(scores >= -1.0 - 1e-6)
    assert scores[0].argmax() == 0 and scores[1].argmax() == 2
    assert np.allclose(scores[2], 0.0)


def test_multi_label_hits(scorer: TopicScorer) -> None:
    [hits] = scorer.predict(fake_embed(["parcel delivery late, support agent email reply slow"]))
    assert set(ids(hits)) == {"delivery", "support"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {h.name for h in hits} == {"Delivery", "Support"}


def test_no_topic_for_unrelated_text(scorer: TopicScorer) -> None:
    assert scorer.predict(fake_embed(["lovely weather today"])) == [[]]


def test_thresholds_respected(taxonomy: Taxonomy) -> None:
    embeddings = fake_embed(["parcel delivery late, support agent email reply slow"])
    scores = TopicScorer.from_taxonomy(taxonomy, fake_embed).score(embeddings)[0]
    strict = taxonomy.with_thresholds({"support": float(scores[1]) + 0.01})
    [hits] = TopicScorer.from_taxonomy(strict, fake_embed).predict(embeddings)
    assert ids(hits) == ["delivery"]
    limits = dict(zip(strict.ids, strict.thresholds(), strict=True))
    assert all(h.score >= limits[h.id] for h in hits)
    loose = taxonomy.with_thresholds({"billing": -1.0})
    [hits] = TopicScorer.from_taxonomy(loose, fake_embed, max_gap=None).predict(embeddings)
    assert "billing" in ids(hits)


def test_max_gap_drops_weak_secondary_topics(taxonomy: Taxonomy) -> None:
    embeddings = fake_embed(["parcel courier delivery late arrived lost, agent"])
    wide = TopicScorer.from_taxonomy(taxonomy.with_thresholds({}, default=0.05), fake_embed, max_gap=None)
    narrow = TopicScorer.from_taxonomy(taxonomy.with_thresholds({}, default=0.05), fake_embed, max_gap=0.1)
    assert ids(wide.predict(embeddings)[0]) == ["delivery", "support"]
    assert ids(narrow.predict(embeddings)[0]) == ["delivery"]


def test_order_preserved(scorer: TopicScorer) -> None:
    texts = ["invoice wrong", "parcel lost", "nothing", "support reply slow", "charged twice, parcel late"]
    forward = scorer.predict(fake_embed(texts))
    backward = scorer.predict(fake_embed(texts[::-1]))
    assert forward == backward[::-1]
    assert [ids(h)[:1] for h in forward[:4]] == [["billing"], ["delivery"], [], ["support"]]
    assert scorer.predict(np.zeros((0, DIM), np.float32)) == []


def test_score_rejects_wrong_dimension(scorer: TopicScorer) -> None:
    with pytest.raises(ValueError, match="embeddings"):
        scorer.score(np.ones((2, DIM + 1), np.float32))


def test_save_load_round_trip(tmp_path: Path, taxonomy: Taxonomy, scorer: TopicScorer) -> None:
    path = tmp_path / "topics.prototypes.npz"
    scorer.save(path, encoder_sha256="abc")
    loaded = TopicScorer.load(path, taxonomy, encoder_sha256="abc")
    x = fake_embed(["parcel late", "support reply"])
    assert np.allclose(loaded.score(x), scorer.score(x))
    with pytest.raises(StalePrototypesError, match="another encoder"):
        TopicScorer.load(path, taxonomy, encoder_sha256="other")
    changed = parse_taxonomy({**TAXONOMY, "topics": [{**TAXONOMY["topics"][0], "examples": ["new"]}]})
    with pytest.raises(StalePrototypesError, match="taxonomy"):
        TopicScorer.load(path, changed, encoder_sha256="abc")


def test_load_or_build_reembeds_only_when_stale(tmp_path: Path, taxonomy: Taxonomy) -> None:
    calls: list[int] = []

    def counting_embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return fake_embed(texts)

    path = tmp_path / "p.npz"
    TopicScorer.load_or_build(taxonomy, counting_embed, path, encoder_sha256="h1")
    TopicScorer.load_or_build(taxonomy, counting_embed, path, encoder_sha256="h1")
    assert len(calls) == 1
    # new thresholds do not invalidate the prototypes, a new encoder does
    TopicScorer.load_or_build(
        taxonomy.with_thresholds({"billing": 0.9}), counting_embed, path, encoder_sha256="h1"
    )
    assert len(calls) == 1
    TopicScorer.load_or_build(taxonomy, counting_embed, path, encoder_sha256="h2")
    assert len(calls) == 2
    assert TopicScorer.load(path, taxonomy, encoder_sha256="h2").ids == taxonomy.ids


def test_prototypes_path() -> None:
    assert prototypes_path("models/topics/taxonomy.json") == Path("models/topics/taxonomy.prototypes.npz")


def test_tune_thresholds_fits_separable_scores() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.7], [0.1, 0.2]])
    gold = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=bool)
    thresholds, overall = tune_thresholds(scores, gold)
    assert micro_f1(scores >= thresholds, gold) == 1.0
    assert 0.2 < overall <= 0.6


def test_taxonomy_file_round_trip(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(taxonomy.with_thresholds({"delivery": 0.41}).to_dict()))
    loaded = load_taxonomy(path)
    assert loaded.ids == ["delivery", "support", "billing"]
    assert loaded.thresholds() == [0.41, 0.3, 0.35]
    assert loaded.fingerprint() == taxonomy.fingerprint()


def _topic(**overrides: object) -> dict[str, object]:
    return {**TAXONOMY["topics"][0], **overrides}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"topics": []}, "'topics' must be a non-empty list"),
        ({"topics": [_topic(id="Bad Id")]}, "lowercase slug"),
        ({"topics": [_topic(), _topic()]}, "duplicate topic id 'delivery'"),
        ({"topics": [{"id": "x", "name": "X"}]}, "missing required field 'description'"),
        ({"topics": [_topic(name="")]}, "'name': must be a non-empty string"),
        ({"topics": [_topic(examples="parcel late")]}, "'examples' must be a list"),
        ({"topics": [_topic(examples=["ok", 3])]}, r"examples\[1\]"),
        ({"topics": [_topic(threshold=1.5)]}, r"in \[-1, 1\]"),
        ({"topics": [_topic(threshold="high")]}, "must be a number"),
        ({"topics": [_topic(treshold=0.4)]}, r"unknown field\(s\) \['treshold'\]"),
        ({"topics": [_topic()], "extra": 1}, "unknown top-level field"),
        ({"topics": [_topic()], "default_threshold": None}, "must be a number"),
    ],
)
def test_bad_taxonomy_rejected(data: object, message: str) -> None:
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy(data, source="bad.json")


def test_bad_taxonomy_file_rejected(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"topics": [')
    with pytest.raises(TaxonomyError, match=r"broken.json: invalid JSON at line 1"):
        load_taxonomy(broken)
    with pytest.raises(TaxonomyError, match="cannot read taxonomy file"):
        load_taxonomy(tmp_path / "missing.json")


def test_error_names_the_topic() -> None:
    data = {"topics": [_topic(), _topic(id="billing", description="  ")]}
    with pytest.raises(TaxonomyError, match=r"bad.json: topics\[1\] \('billing'\): 'description'"):
        parse_taxonomy(data, source="bad.json")


def test_shipped_taxonomy_is_valid() -> None:
    taxonomy = load_taxonomy(Path(__file__).resolve().parents[2] / "models" / "topics" / "taxonomy.json")
    assert len(taxonomy.topics) >= 12
    assert {"delivery_shipping", "pricing_promotions", "customer_support", "cancellation"} <= set(
        taxonomy.ids
    )
    assert all(8 <= len(t.examples) <= 15 for t in taxonomy.topics)


def test_background_adapts_centroids_to_unlabelled_comments(taxonomy: Taxonomy) -> None:
    # "tracking" and "refund" appear in no topic text; the unlabelled comments tie them to a topic.
    background = fake_embed(
        [
            "parcel tracking number",
            "courier tracking page",
            "delivery tracking",
            "refund invoice",
            "card refund charged",
            "support agent email",
        ]
    )
    comment = fake_embed(["tracking number", "refund please"])
    plain = TopicScorer.from_taxonomy(taxonomy, fake_embed, centroid_weight=1.0)
    adapted = TopicScorer.from_taxonomy(taxonomy, fake_embed, centroid_weight=1.0, background=background)
    assert np.allclose(plain.score(comment), 0.0)  # no shared word: every topic scores 0
    assert adapted.ids[int(adapted.score(comment)[0].argmax())] == "delivery"
    assert adapted.ids[int(adapted.score(comment)[1].argmax())] == "billing"
    np.testing.assert_allclose(np.linalg.norm(adapted.centroids, axis=1), 1.0, rtol=1e-5)
    # Thresholds can change without losing the adaptation; an empty background changes nothing.
    retuned = adapted.with_taxonomy(taxonomy.with_thresholds({}, default=0.1))
    np.testing.assert_array_equal(retuned.centroids, adapted.centroids)
    empty = TopicScorer.from_taxonomy(taxonomy, fake_embed, background=np.zeros((0, DIM)))
    np.testing.assert_array_equal(empty.centroids, plain.centroids)
