"""Key phrases of an alert: terms over-indexing in the window's comments against the baseline's (log-odds with
an informative Dirichlet prior over spaCy lemmas and noun chunks), as a pure function and through the DB."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from nlp_service.anomaly.phrases import alert_key_phrases, sample_texts
from nlp_service.comments.schemas import CommentFilter
from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker
from nlp_service.topics.keywords import extract_terms, key_phrases, log_odds_z

SPACY = Settings().spacy_model
USUAL = [
    "The discount code did not apply to my {x} order.",
    "Your prices for the {x} went up again, too expensive.",
    "The promo banner said 20% off but the {x} was full price.",
    "Coupon expired before I could use it on the {x}.",
    "Great sale on the {x}, thanks!",
    "Price match request for the {x} was refused.",
]
INCIDENT = [
    "I was charged tax on the full price instead of the sale price for the {x}.",
    "The receipt shows tax charged on the full price instead of the sale price.",
    "Why was I charged tax on the full price instead of the sale price?",
    "Sales tax was calculated on the original price, not the sale price I paid for the {x}.",
]
PRODUCTS = ["jacket", "kettle", "lamp", "headphones", "blender", "backpack"]


def texts(templates: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(templates).format(x=rng.choice(PRODUCTS)) for _ in range(n)]


def test_incident_terms_come_first_and_an_unchanged_mix_gives_none() -> None:
    baseline = extract_terms(texts(USUAL, 150, 1), SPACY)
    window = extract_terms(texts(USUAL, 20, 2) + texts(INCIDENT, 30, 3), SPACY)
    found = key_phrases(window, baseline)
    names = [p.phrase for p in found]
    assert set(names[:2]) == {"tax", "sale price"}, found
    top = found[0]
    assert top.window_count == 30 and top.baseline_count == 0 and top.score >= 3
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)
    assert "price" not in names  # in the baseline as often ("full price" of the promo banner)
    # the same mix in the window as in the baseline: nothing over-indexes
    assert key_phrases(extract_terms(texts(USUAL, 50, 4), SPACY), baseline) == []
    assert key_phrases([], baseline) == [] and key_phrases(window, []) == []


def test_log_odds_ranks_by_evidence_not_by_rarity() -> None:
    window = Counter({"tax": 30, "refund": 3, "order": 40})
    baseline = Counter({"refund": 0, "order": 400, "late": 100})
    z = log_odds_z(window, baseline)
    assert z["tax"] > z["refund"] > 0  # 30 comments outweigh 3, both absent from the baseline
    assert z["order"] < z["tax"]


def test_a_phrase_replaces_the_words_it_covers_and_rare_terms_are_dropped() -> None:
    window = [{"sale price", "sale", "price", "tax"}] * 12 + [{"refund"}] * 2 + [{"order"}] * 10
    baseline = [{"order"}] * 100 + [{"price"}] * 5
    names = [p.phrase for p in key_phrases(window, baseline)]
    assert "sale price" in names and "sale" not in names and "price" not in names
    assert "refund" not in names  # in fewer than min_docs (3) comments
    assert len(key_phrases(window * 5, baseline, k=2)) == 2


@pytest.fixture
def pricing_client(app_client: TestClient) -> TestClient:
    """Two weeks of usual pricing comments in every region, then a day with a tax complaint in eu-west."""
    t0 = datetime(2024, 3, 4, tzinfo=UTC)
    regions = ["eu-west", "us-east", "apac"]
    items = [
        {"id": f"b{i}", "text": t, "created_at": (t0 + timedelta(hours=2 * i)).isoformat(),
         "region": regions[i % 3], "source": "survey"}
        for i, t in enumerate(texts(USUAL, 150, 5))
    ]  # fmt: skip
    day = t0 + timedelta(days=14)
    items += [
        {"id": f"w{i}", "text": t, "created_at": (day + timedelta(minutes=20 * i)).isoformat(),
         "region": "eu-west" if i % 4 else "us-east", "source": "survey"}
        for i, t in enumerate(texts(INCIDENT, 36, 6) + texts(USUAL, 12, 7))
    ]  # fmt: skip
    items += [
        {
            "id": f"q{i}",
            "text": t,
            "created_at": (day + timedelta(minutes=30 * i + 7)).isoformat(),
            "region": "latam",
            "source": "survey",
        }
        for i, t in enumerate(texts(INCIDENT, 12, 8))
    ]  # fmt: skip  (a region with no pricing comments before)
    r = app_client.post("/v1/comments", json={"comments": items})
    assert r.status_code in (200, 201), r.text
    return app_client


def test_key_phrases_through_the_db(pricing_client: TestClient, database_url: str) -> None:
    day = datetime(2024, 3, 18, tzinfo=UTC)
    scope = {"topic": ["pricing_promotions"], "region": ["eu-west"]}
    window = CommentFilter.model_validate({**scope, "start": day, "end": day + timedelta(days=1)})
    baseline = CommentFilter.model_validate({**scope, "start": day - timedelta(days=14), "end": day})
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            win = sample_texts(s, window)
            assert len(win) == 36 and sum("tax" in t for t in win) == 27
            capped = sample_texts(s, baseline, limit=5)
            assert len(capped) == 5 and len(set(capped)) >= 3  # spread over the period, not the first five
            t0 = time.perf_counter()
            found = alert_key_phrases(s, SPACY, window, baseline)
            elapsed = time.perf_counter() - t0
    finally:
        engine.dispose()
    names = [p.phrase for p in found]
    assert set(names[:2]) == {"tax", "sale price"}, found
    assert found[0].window_count == 27 and found[0].baseline_count == 0
    assert elapsed < 10  # one bounded spaCy pass (typically well under a second once loaded)


def test_a_quiet_segment_is_contrasted_with_the_topic(pricing_client: TestClient, database_url: str) -> None:
    day = datetime(2024, 3, 18, tzinfo=UTC)
    window = CommentFilter(
        topic=["pricing_promotions"], region=["latam"], start=day, end=day + timedelta(days=1)
    )
    before = {"topic": ["pricing_promotions"], "start": day - timedelta(days=14), "end": day}
    baseline = CommentFilter.model_validate({**before, "region": ["latam"]})
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            assert sample_texts(s, baseline) == []
            assert alert_key_phrases(s, SPACY, window, baseline) == []  # nothing to contrast with
            found = alert_key_phrases(s, SPACY, window, baseline, CommentFilter.model_validate(before))
    finally:
        engine.dispose()
    assert {"tax", "sale price"} <= {p.phrase for p in found[:3]}, found
    assert found[0].window_count == 12 and found[0].baseline_count == 0
