"""Request and response models of the key-management endpoints (``/v1/keys``, scope ``admin``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nlp_service.auth.scopes import Scope, parse_scopes


class KeyCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    scopes: list[Scope] = Field(min_length=1, max_length=6)

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        return parse_scopes(list(value))


class KeyPublic(BaseModel):
    """A key as listed: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreateResponse(KeyPublic):
    key: str = Field(description="The full key, shown only once: send it as 'Authorization: Bearer <key>'")


class KeyListResponse(BaseModel):
    keys: list[KeyPublic]
