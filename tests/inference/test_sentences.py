"""The rule-based sentence splitter, the character-to-token span mapping and the span pooling."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_service.inference.sentences import pool_spans, sentence_embeddings, split_sentences, token_spans


def pieces(text: str, **kwargs: int) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text, **kwargs)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Delivery was fast. The app keeps crashing.", ["Delivery was fast.", "The app keeps crashing."]),
        ("Where is my parcel?! Nobody answers!!", ["Where is my parcel?!", "Nobody answers!!"]),
        ("great product. delivery slow though", ["great product.", "delivery slow though"]),
        ("Line one is here\n\nline two is here", ["Line one is here", "line two is here"]),
        ("  Padded sentence here.   ", ["Padded sentence here."]),
        ("Delivery was fast but the app keeps crashing", ["Delivery was fast but the app keeps crashing"]),
    ],
)
def test_splits_at_sentence_ends(text: str, expected: list[str]) -> None:
    assert pieces(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Smith at the St. Louis store helped.",
        "It cost 9.99 dollars for the U.S. version.",
        "Things like e.g. returns and etc. are slow.",
        'I asked "why?" and got no answer.',
    ],
)
def test_abbreviations_numbers_and_quotes_end_no_sentence(text: str) -> None:
    assert pieces(text) == [text]


def test_short_fragments_join_a_neighbour() -> None:
    assert pieces("Fine. The courier was late again.") == ["Fine. The courier was late again."]
    assert pieces("The courier was late again. Thanks!") == ["The courier was late again. Thanks!"]
    assert pieces("The courier was late again. Thanks!", min_words=1) == [
        "The courier was late again.",
        "Thanks!",
    ]


def test_empty_text_has_no_sentences() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n ") == []


def test_token_spans_map_characters_to_tokens() -> None:
    # [CLS] deli very was fast . the app [SEP] [PAD]
    offsets = np.array(
        [[0, 0], [0, 4], [4, 8], [9, 12], [13, 17], [17, 18], [19, 22], [23, 26], [0, 0], [0, 0]]
    )
    assert token_spans(offsets, [(0, 18), (19, 26)]) == [(1, 6), (6, 8)]
    assert token_spans(offsets, [(30, 40)]) == [(0, 0)]  # cut off by truncation


def test_token_spans_with_the_real_tokenizer() -> None:
    from transformers import AutoTokenizer

    from nlp_service.config import default_encoder_path

    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path())
    text = "Delivery was fast. The app keeps crashing."
    encoded = tokenizer([text], return_offsets_mapping=True)
    offsets = np.array(encoded["offset_mapping"][0])
    spans = token_spans(offsets, split_sentences(text))
    ids = encoded["input_ids"][0]
    assert [tokenizer.decode(ids[a:b]) for a, b in spans] == ["delivery was fast.", "the app keeps crashing."]


def test_pool_spans_is_the_normalised_mean_of_each_range() -> None:
    hidden = np.array([[9.0, 9.0], [1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [9.0, 9.0]], dtype=np.float32)
    pooled = pool_spans(hidden, [(1, 3), (3, 4), (2, 2)])
    np.testing.assert_allclose(pooled, [[1.0, 0.0], [0.0, 1.0]])
    assert pool_spans(hidden, [(0, 0)]).shape == (0, 2)


def test_sentence_embeddings_only_for_two_or_more_sentences() -> None:
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(12, 4)).astype(np.float32)
    offsets = np.array([[0, 0]] + [[i * 5, i * 5 + 4] for i in range(10)] + [[0, 0]])
    text = "aaaa bbbb ccc. dddd eeee ffff. gggg hhhh iiii jjjj"
    out = sentence_embeddings(text, offsets, hidden)
    assert out is not None and out.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert sentence_embeddings("one sentence only here", offsets, hidden) is None
