"""spaCy's string store must not grow with every new word ingested (issue 12, finding 20).

Order numbers, names and typos are new strings in nearly every comment; spaCy interns each one in its vocab
for the life of the process unless the work runs in a memory zone.
"""

from __future__ import annotations

from nlp_service.config import Settings
from nlp_service.search.keywords import KeywordAnalyzer, load_spacy


def unique_texts(n: int, tag: str) -> list[str]:
    text = "Parcel {t}{i}qz never arrived, order ORD-{t}-{i} ref{i}xw tracking says zorbl{i}"
    return [text.format(t=tag, i=i) for i in range(n)]


def test_keyword_terms_do_not_grow_the_spacy_string_store() -> None:
    model = Settings().spacy_model
    analyzer = KeywordAnalyzer(model)
    analyzer.terms(unique_texts(50, "warm"))
    strings = load_spacy(model).vocab.strings
    before = len(strings)
    bags = analyzer.terms(unique_texts(2_000, "new"))
    assert "zorbl7" in bags[7] and "ord-new-7" in bags[7]
    assert len(strings) - before < 20, f"string store grew by {len(strings) - before} for 2,000 texts"
