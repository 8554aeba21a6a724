"""``POST /v1/classify``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from nlp_service.classify import service
from nlp_service.classify.schemas import ClassifyRequest, ClassifyResponse
from nlp_service.deps import JsonBody, SettingsDep, get_batcher, get_engine
from nlp_service.hardening.clients import ClientId
from nlp_service.inference.limits import check_texts

router = APIRouter(tags=["classify"])


@router.post(
    "/classify", response_model=ClassifyResponse, response_model_exclude_none=True, dependencies=[JsonBody]
)
async def classify(
    body: ClassifyRequest, settings: SettingsDep, request: Request, client: ClientId
) -> ClassifyResponse:
    """Sentiment, emotions with intensity, topics (and optionally sentences and embeddings) per text.

    ``sentences`` costs spaCy plus one encoder pass per sentence: a request may hold at most
    ``max_sentence_chars_per_request`` characters and ``max_sentences_per_request`` sentences with it (422).
    """
    check_texts(settings, ((("texts", i), t) for i, t in enumerate(body.texts)), count_loc=("texts",))
    # After the body is validated: bad input gets its 422 while models load (see nlp_service.deps).
    engine, batcher = await get_engine(request), await get_batcher(request)
    include = list(dict.fromkeys(body.include))
    budget = service.SentenceBudget(
        max_chars=settings.max_sentence_chars_per_request, max_sentences=settings.max_sentences_per_request
    )
    return await service.classify(
        engine=engine, batcher=batcher, texts=body.texts, include=include, budget=budget, client=client
    )
