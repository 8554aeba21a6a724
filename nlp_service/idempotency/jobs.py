"""Worker job ``idempotency-cleanup``: deletes stored responses whose ``NLP_IDEMPOTENCY_TTL_S`` has passed."""

from __future__ import annotations

from nlp_service.idempotency import service
from nlp_service.worker import JobContext, job

CLEANUP_INTERVAL_S = 600.0
BATCH = 1000


@job("idempotency-cleanup", interval_s=CLEANUP_INTERVAL_S)
def delete_expired_keys(ctx: JobContext) -> float | None:
    """One batch per transaction; again at once while full batches come back."""
    with ctx.session() as db_session:
        deleted = service.delete_expired(db_session=db_session, limit=BATCH)
    return 0.0 if deleted == BATCH else None
