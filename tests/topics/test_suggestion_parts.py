"""The pure parts of discovery: c-TF-IDF keywords, merging split clusters, a suggestion as a taxonomy topic,
and the emerging alert's severity."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nlp_service.anomaly.emerging import label, severity
from nlp_service.config import Settings
from nlp_service.topics.discovery import discover, merge_similar
from nlp_service.topics.keywords import class_counts, class_tfidf, extract_terms, top_keywords
from nlp_service.topics.suggestion_topic import slug, to_topic
from nlp_service.topics.taxonomy import parse_taxonomy


def bags(*docs: str) -> list[set[str]]:
    return [set(d.split(",")) for d in docs]


def test_keywords_are_what_sets_a_cluster_apart_from_the_others_and_the_background() -> None:
    points = class_counts(bags(*["order,loyalty,point,expire,loyalty point"] * 6, "order,point,wallet"))
    voucher = class_counts(bags(*["order,voucher,code,invalid,voucher code"] * 5))
    background = class_counts(bags(*["order,delivery,late"] * 20, "point,price"))
    kw = top_keywords([points, voucher, background], k=4, n_clusters=2)
    assert len(kw) == 2
    assert kw[0][:2] == ["loyalty point", "expire"]  # the phrase took the place of "loyalty" and "point"
    assert "loyalty" not in kw[0] and "point" not in kw[0]
    assert "wallet" not in kw[0]  # in one comment only
    assert kw[1][:2] == ["voucher code", "invalid"]
    assert kw[0][-1] == kw[1][-1] == "order"  # common to all: last
    weights = class_tfidf([points, voucher, background])
    assert weights[0]["expire"] > weights[0]["order"] > 0  # a word everywhere weighs little


def test_a_phrase_does_not_replace_a_word_it_rarely_covers() -> None:
    cls = class_counts(
        bags(*["point,expire"] * 8, "point,loyalty point,loyalty", "point,loyalty point,loyalty")
    )
    kw = top_keywords([cls, class_counts(bags("order"))], k=3, n_clusters=1)
    assert kw[0][0] == "point" and "loyalty point" not in kw[0][:1]


def test_terms_are_content_lemmas_and_noun_chunks() -> None:
    (terms,) = extract_terms(["My loyalty points expired before I could use them!"], Settings().spacy_model)
    assert {"loyalty point", "expire", "loyalty", "point"} <= terms
    assert not {"my", "i", "them", "before", "!"} & terms


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two themes far apart, each a tight blob of 30 unit vectors."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[:2]
    x = np.vstack([c + 0.08 * rng.standard_normal((30, 16)) for c in centres])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat([0, 1], 30)


def test_merging_joins_the_parts_of_one_theme_but_not_two_themes() -> None:
    x, truth = blobs()
    found = discover(x, k_min=4, k_max=8, min_cluster_size=1, seed=0)
    assert found.k >= 4  # each theme split in parts
    merged = merge_similar(x, found, min_similarity=0.8, min_cluster_size=5)
    assert len(merged.clusters) == 2 and len(merged.noise) == 0
    for c in merged.clusters:
        assert len(set(truth[c.members])) == 1 and c.size == 30
        assert np.isclose(np.linalg.norm(c.centre), 1.0, atol=1e-5)
    assert merged.labels.tolist() == merge_similar(x, found, min_similarity=0.8).labels.tolist()
    kept = merge_similar(x, found, min_similarity=1.01, min_cluster_size=1)
    assert len(kept.clusters) == found.k  # nothing is similar enough: the parts stay
    dropped = merge_similar(x, found, min_similarity=1.01, min_cluster_size=31)
    assert dropped.clusters == [] and len(dropped.noise) == 60


def test_discovery_with_merging_is_deterministic() -> None:
    x, _ = blobs(3)
    runs = [merge_similar(x, discover(x, min_cluster_size=1, seed=7), min_similarity=0.8) for _ in range(2)]
    assert runs[0].labels.tolist() == runs[1].labels.tolist()


def test_a_suggestion_becomes_a_valid_taxonomy_topic() -> None:
    texts = [
        "my loyalty points expired",
        "all my loyalty points expired",
        "points expired again",
        "  ",
        "x y",
    ]
    topic = to_topic(keywords=["loyalty point", "expire", "wallet"], texts=texts, taken_ids={"loyalty_point"})
    assert topic.id == "loyalty_point_expire" and topic.name == "Loyalty point, expire, wallet"
    assert topic.description == "Comments about loyalty point, expire and wallet."
    assert topic.positives == ("my loyalty points expired", "all my loyalty points expired",
                               "points expired again", "x y")  # fmt: skip
    assert topic.examples == topic.positives[:3]
    parsed = parse_taxonomy({"topics": [topic.to_dict()]})
    assert parsed.topics[0] == topic
    named = to_topic(keywords=[], texts=texts[:1], topic_id="points_expiry", name="Points expiry")
    assert (named.id, named.name) == ("points_expiry", "Points expiry")
    with pytest.raises(ValueError, match="representative texts"):
        to_topic(keywords=["a"], texts=[" "])
    with pytest.raises(ValueError, match="slug"):
        to_topic(keywords=["a"], texts=["b"], topic_id="Not A Slug")


def test_slugs_are_unique_and_valid() -> None:
    assert slug(["loyalty point", "loyalty", "expire"]) == "loyalty_point_expire"
    assert slug(["loyalty point"], taken={"loyalty_point", "loyalty_point_2"}) == "loyalty_point_3"
    assert slug(["3ds secure"]) == "topic_3ds_secure"
    assert slug(["!!!"]) == "topic"


@pytest.mark.parametrize(
    ("growth", "excess", "expected"),
    [(2.0, 500.0, "low"), (3.0, 19.0, "low"), (3.0, 20.0, "medium"), (6.0, 60.0, "high"),
     (50.0, 60.0, "high"), (12.0, 250.0, "critical")],
)  # fmt: skip
def test_emerging_severity_is_the_weaker_of_growth_and_volume(
    growth: float, excess: float, expected: str
) -> None:
    assert severity(growth, excess) == expected


def test_emerging_label_names_the_top_keywords() -> None:
    assert label(["loyalty point", "expire", "wallet", "sadly"]) == "Emerging: loyalty point, expire, wallet"
    assert label([]) == "Emerging: unnamed theme"


def test_counts_are_per_comment() -> None:
    assert class_counts([{"a", "b"}, {"a"}]) == Counter({"a": 2, "b": 1})
