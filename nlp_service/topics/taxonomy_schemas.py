"""Request and response models of the taxonomy endpoints (topics, examples, versions, re-tag jobs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from nlp_service.topics.taxonomy import MAX_EXAMPLES

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=100)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
QueryField = Literal["source", "touchpoint", "region", "sentiment"]


class TopicQueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="the search: comments similar to it count in this topic")
    filters: dict[QueryField, list[Annotated[str, StringConstraints(min_length=1, max_length=100)]]] = Field(
        default_factory=dict, description="any of the values per field; fields combine with AND"
    )


class TopicFields(BaseModel):
    """Every field of a topic but its id (all optional: a PATCH replaces the fields it names)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    description: Text | None = None
    examples: list[Text] | None = Field(None, max_length=MAX_EXAMPLES, description="phrases (zero-shot)")
    threshold: float | None = Field(None, ge=-1.0, le=1.0, description="zero-shot cosine threshold")
    parent: Slug | None = Field(None, description="a top-level topic: this one becomes its sub-topic")
    positives: list[Text] | None = Field(None, max_length=MAX_EXAMPLES, description="taught examples")
    negatives: list[Text] | None = Field(None, max_length=MAX_EXAMPLES, description="taught counter-examples")
    query: TopicQueryIn | None = Field(None, description="define the topic by a search")


class TopicIn(TopicFields):
    id: Slug
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Text


class TopicOut(BaseModel):
    id: str
    name: str
    description: str
    examples: list[str]
    threshold: float | None
    parent: str | None
    positives: list[str]
    negatives: list[str]
    query: dict[str, Any] | None
    method: str = Field(description="zero_shot, learned (taught examples) or query (defined by a search)")
    cv_precision: float | None = Field(description="learned topics: cross-validated precision")
    cv_recall: float | None = Field(description="learned topics: cross-validated recall")
    version: int = Field(description="the taxonomy version this topic was read from")


class ExampleRef(BaseModel):
    """A stored comment (by id) or a text."""

    model_config = ConfigDict(extra="forbid")

    comment_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    text: Text | None = None

    @model_validator(mode="after")
    def _one(self) -> ExampleRef:
        if (self.comment_id is None) == (self.text is None):
            raise ValueError("give exactly one of comment_id and text")
        return self


class ExamplesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    positive: list[ExampleRef] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    negative: list[ExampleRef] = Field(default_factory=list, max_length=MAX_EXAMPLES)

    @model_validator(mode="after")
    def _some(self) -> ExamplesIn:
        if not self.positive and not self.negative:
            raise ValueError("give at least one positive or negative example")
        return self


class RetagJobOut(BaseModel):
    id: str
    version_id: int
    status: str = Field(description="queued, running, succeeded, failed or superseded")
    done: int = Field(description="comments re-tagged so far")
    total: int = Field(description="comments to re-tag (grows if comments arrive meanwhile)")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class VersionOut(BaseModel):
    id: int
    parent_id: int | None
    change: str
    created_by: str | None
    created_at: datetime
    active: bool
    topics: int


class VersionDetail(VersionOut):
    quality: dict[str, Any] = Field(description="per topic: method, cross-validated precision/recall")
    taxonomy: dict[str, Any]


class ChangeOut(BaseModel):
    """The version a change made, whether it is active, and the re-tag job its activation queued."""

    version: VersionOut
    active_version: int | None
    retag_job: RetagJobOut | None


class ActivationOut(BaseModel):
    active_version: int
    retag_job: RetagJobOut | None = Field(description="None when the version was already active")


class ChangeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activate: bool = Field(False, description="activate the new version at once (queues the re-tag)")


class VersionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1, description="default: the newest version")
