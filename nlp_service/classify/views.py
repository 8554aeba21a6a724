"""``POST /v1/classify``."""

from __future__ import annotations

from fastapi import APIRouter

from nlp_service.classify import service
from nlp_service.classify.schemas import ClassifyRequest, ClassifyResponse
from nlp_service.deps import JsonBody, StateDep

router = APIRouter(tags=["classify"])


@router.post(
    "/classify", response_model=ClassifyResponse, response_model_exclude_none=True, dependencies=[JsonBody]
)
async def classify(body: ClassifyRequest, state: StateDep) -> ClassifyResponse:
    """Sentiment, emotions with intensity, topics (and optionally sentences and embeddings) per text."""
    engine, batcher = state.require_engine()
    include = list(dict.fromkeys(body.include))
    return await service.classify(engine=engine, batcher=batcher, texts=body.texts, include=include)
