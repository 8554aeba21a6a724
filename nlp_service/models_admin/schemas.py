"""Request/response models of the model registry endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelVersionOut(BaseModel):
    version: str
    active: bool = Field(description="The registry's active version (served after the next reload)")
    serving: bool = Field(description="The version this process is serving now")
    kind: str
    labels: list[str]
    created: str | None = None
    encoder_sha256: str
    metrics: dict[str, Any]


class TaskModelsOut(BaseModel):
    task: str
    versions: list[ModelVersionOut]


class ModelsResponse(BaseModel):
    serving: dict[str, str] = Field(description="Model versions this process serves now")
    tasks: list[TaskModelsOut]


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=40, description="The version to make active and serve")


class ReloadResponse(BaseModel):
    previous: dict[str, str]
    serving: dict[str, str]
    changed: bool
    rescore_job: str | None = Field(
        default=None,
        description="A promotion or rollback that changed the served heads queues a `rescore` job "
        "(GET /v1/jobs/{id}): the stored comments re-scored from their stored features",
    )
