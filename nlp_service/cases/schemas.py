"""Request/response models of the case endpoints (``/v1/alerts/{id}/assign|notes|close|history``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nlp_service.cases.lifecycle import Action, CaseStatus, Feedback, TargetType

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Owner = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]


class CaseAction(BaseModel):
    """Optional body of acknowledge / resolve / close: a note and (acknowledge, resolve) feedback."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=1000)
    feedback: Feedback | None = Field(
        None, description="Was this alert useful? Stored, reported by GET /v1/alerts/feedback"
    )


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: Owner | None = Field(description="A name or e-mail (free text); null unassigns")
    note: str | None = Field(None, max_length=1000)


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note


class CaseEntryOut(BaseModel):
    """One change of a case."""

    id: int
    target_type: TargetType
    target_id: str
    at: datetime
    actor: str = Field(description='API key id, "open" (keys off) or "system"')
    action: Action
    from_status: CaseStatus | None = None
    to_status: CaseStatus | None = None
    owner: str | None = Field(None, description="the owner after this change")
    note: str | None = None
    feedback: Feedback | None = None
    details: dict[str, Any] | None = None


class CaseHistory(BaseModel):
    target_type: TargetType
    target_id: str
    entries: list[CaseEntryOut] = Field(description="oldest first")
