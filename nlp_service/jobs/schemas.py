"""Request and response models of ``/v1/jobs``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
SubmittableKind = Literal["rescore", "reembed"]


class JobProgress(BaseModel):
    done: int = Field(description="Items handled so far (comments re-scored, re-embedded, rows imported)")
    total: int = Field(description="Items planned (an estimate until the job ends)")
    fraction: float = Field(description="done / total, 0-1 (1 once the job succeeded)")
    slices: int = Field(description="Committed slices; a resumed job continues after the last one")


class JobOut(BaseModel):
    id: str
    kind: str = Field(description="import, rescore or reembed")
    status: JobStatus
    params: dict[str, Any]
    progress: JobProgress
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool
    attempts: int = Field(description="Claims by workers (a resumed job after a worker died counts one more)")
    created_by: str | None = Field(default=None, description="The id of the API key that submitted it")
    created_at: datetime
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_before: datetime | None = Field(
        default=None, description="Pass as `before` for older jobs (None: no more)"
    )


class JobIn(BaseModel):
    """A job to queue. ``rescore``: re-score the stored comments with the served heads from their stored
    features (no re-encoding); ``reembed``: re-encode the comments whose vectors another encoder made. Bulk
    import has its own endpoint (``POST /v1/comments/import``), as it carries a file."""

    model_config = ConfigDict(extra="forbid")

    kind: SubmittableKind
    params: dict[str, Any] = Field(default_factory=dict)


class JobListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str | None = Field(default=None, max_length=32)
    status: JobStatus | None = None
    limit: int = Field(default=50, ge=1, le=500)
    before: datetime | None = None
