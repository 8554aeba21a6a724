"""Classification: run texts through the batcher and serialise their decoded results into the API's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from nlp_service.classify.schemas import ClassifyResponse, ClassifyResult, SentenceOut
from nlp_service.errors import InvalidInput
from nlp_service.inference.batcher import MicroBatcher
from nlp_service.inference.engine import Analysis
from nlp_service.inference.protocol import AnalysisEngine
from nlp_service.inference.schemas import emotion_out, sentiment_out, topics_out


def build_result(
    index: int,
    analysis: Analysis,
    include: Sequence[str],
    sentences: list[SentenceOut] | None = None,
) -> ClassifyResult:
    """One API result from one engine analysis's decoded result, with only the parts asked for."""
    decoded = analysis.decoded
    return ClassifyResult(
        index=index,
        truncated=analysis.truncated,
        sentiment=sentiment_out(decoded.sentiment) if "sentiment" in include else None,
        emotion=emotion_out(decoded.emotion) if "emotion" in include else None,
        topics=topics_out(decoded.topics) if "topics" in include else None,
        sentences=sentences,
        embedding=[float(x) for x in analysis.embedding] if "embedding" in include else None,
    )


@dataclass(frozen=True)
class SentenceBudget:
    """What ``include=sentences`` may cost one request (settings ``max_sentence*_per_request``)."""

    max_chars: int
    max_sentences: int


def check_sentence_chars(texts: Sequence[str], budget: SentenceBudget) -> None:
    """422 before segmentation when the texts are longer in total than the budget allows."""
    total = sum(len(text) for text in texts)
    _check_budget(total, budget.max_chars, "characters", "NLP_MAX_SENTENCE_CHARS_PER_REQUEST")


def check_sentence_count(spans: Sequence[Sequence[object]], budget: SentenceBudget) -> None:
    """422 before encoding when the texts hold more sentences than the budget allows."""
    total = sum(len(text_spans) for text_spans in spans)
    _check_budget(total, budget.max_sentences, "sentences", "NLP_MAX_SENTENCES_PER_REQUEST")


def _check_budget(actual: int, limit: int, unit: str, setting: str) -> None:
    if actual <= limit:
        return
    message = (
        f"include=sentences is limited to {limit} {unit} per request ({setting}); "
        f"these texts have {actual}: send fewer texts per request"
    )
    detail = {"field": "texts", "message": message, "type": "sentences_budget", "limit": limit}
    raise InvalidInput(message, detail=[{**detail, "actual": actual}])


def sentences_out(
    spans: list[tuple[int, int, str]], analyses: Sequence[Analysis], include: Sequence[str]
) -> list[SentenceOut]:
    """One text's sentences with their sentiment, topics (and emotions if asked for)."""
    return [
        SentenceOut(
            text=text,
            start=start,
            end=end,
            sentiment=sentiment_out(analysis.decoded.sentiment),
            emotion=emotion_out(analysis.decoded.emotion) if "emotion" in include else None,
            topics=topics_out(analysis.decoded.topics),
        )
        for (start, end, text), analysis in zip(spans, analyses, strict=True)
    ]


async def classify(
    *,
    engine: AnalysisEngine,
    batcher: MicroBatcher[str, Analysis],
    texts: list[str],
    include: Sequence[str],
    budget: SentenceBudget,
    client: str = "-",
) -> ClassifyResponse:
    """Analyse ``texts`` (one encoder pass each, batched with concurrent requests), in input order.

    With ``sentences``, the budget is checked before spaCy runs (characters) and before anything is queued
    (sentences); texts and sentences then queue together, all or none, so an overloaded queue answers 429
    before any encoder work instead of after it.
    """
    spans: list[list[tuple[int, int, str]]] = []
    if "sentences" in include:
        check_sentence_chars(texts, budget)
        spans = await asyncio.to_thread(engine.sentences, texts)
        check_sentence_count(spans, budget)
    flat = [span[2] for text_spans in spans for span in text_spans]
    queued = await batcher.submit_many([*texts, *flat], client=client)
    analyses, sentence_analyses = queued[: len(texts)], queued[len(texts) :]
    per_text_sentences: list[list[SentenceOut] | None] = [None] * len(texts)
    cursor = 0
    for i, text_spans in enumerate(spans):
        per_text_sentences[i] = sentences_out(
            text_spans, sentence_analyses[cursor : cursor + len(text_spans)], include
        )
        cursor += len(text_spans)
    results = [
        build_result(i, analysis, include, per_text_sentences[i]) for i, analysis in enumerate(analyses)
    ]
    versions = dict(analyses[0].models.versions) if analyses else dict(engine.models.versions)
    return ClassifyResponse(results=results, model_versions=versions)
