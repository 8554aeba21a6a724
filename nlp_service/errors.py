"""One error hierarchy for the service and the one place it is mapped to HTTP.

Every error response has the shape ``{"error": message, "type": kind, "detail": [...]}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base class: carries an HTTP status, a short machine-readable type and optional details."""

    status_code = 500
    error_type = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        detail: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or []
        self.headers = headers or {}


class InvalidInput(ServiceError):
    status_code = 422
    error_type = "validation_error"


class BadRequest(ServiceError):
    status_code = 400
    error_type = "bad_request"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    error_type = "unsupported_media_type"


class NotFound(ServiceError):
    status_code = 404
    error_type = "not_found"


class Conflict(ServiceError):
    status_code = 409
    error_type = "conflict"


class Unauthorized(ServiceError):
    status_code = 401
    error_type = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    error_type = "forbidden"


class PayloadTooLarge(ServiceError):
    status_code = 413
    error_type = "payload_too_large"


class Overloaded(ServiceError):
    status_code = 429
    error_type = "overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_s))})


class RateLimited(ServiceError):
    """Too many requests for one API key (or client address when keys are off)."""

    status_code = 429
    error_type = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_s))})


class NotReady(ServiceError):
    status_code = 503
    error_type = "not_ready"

    def __init__(self, message: str = "models are still loading") -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class ErrorResponse(BaseModel):
    """The body of every error response (documented in OpenAPI for each declared error status)."""

    error: str = Field(description="Human-readable message")
    type: str = Field(description="Machine-readable kind, e.g. validation_error, unauthorized")
    detail: list[dict[str, Any]] = Field(default_factory=list, description="Per-field details, if any")


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "texts", 3)`` -> ``"texts[3]"``."""
    # only the leading location goes: a field may itself be called "query" (POST /v1/search)
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def error_body(message: str, error_type: str, detail: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": message, "type": error_type, "detail": detail or []}


def validation_detail(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors -> ``[{"field": "texts[3]", "message": ..., "type": ...}]``."""
    return [
        {
            "field": field_path(tuple(err.get("loc", ()))),
            "message": str(err.get("msg", "invalid")),
            "type": str(err.get("type", "invalid")),
            **(
                {"input": _json_safe(err["input"])} if isinstance(err.get("input"), str | int | float) else {}
            ),
        }
        for err in errors
    ]


def _nul_in_text(exc: DBAPIError) -> bool:
    """Whether PostgreSQL refused a parameter for holding a NUL character (psycopg's DataError)."""
    message = str(exc.orig) if exc.orig is not None else ""
    return type(exc.orig).__name__ == "DataError" and "NUL" in message


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to a JSON response: service errors, validation errors, HTTP errors, the rest."""

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.message, exc.error_type, exc.detail),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        bad_json = [err for err in errors if err.get("type") == "json_invalid"]
        if bad_json:
            reason = bad_json[0].get("ctx", {}).get("error", "JSON decode error")
            detail = [{"field": "body", "message": f"invalid JSON: {reason}", "type": "json_invalid"}]
            return JSONResponse(
                error_body("request body is not valid JSON", "invalid_json", detail), status_code=400
            )
        detail = validation_detail(errors)
        fields = ", ".join(sorted({d["field"] for d in detail}))
        return JSONResponse(
            error_body(f"invalid input: {fields}", "validation_error", detail), status_code=422
        )

    @app.exception_handler(PydanticValidationError)
    async def _derived_validation_error(_: Request, exc: PydanticValidationError) -> JSONResponse:
        # A model built from request data inside a view (e.g. query parameters turned into a filter).
        detail = validation_detail(exc.errors())
        fields = ", ".join(sorted({d["field"] for d in detail}))
        body = error_body(f"invalid input: {fields}", "validation_error", detail)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(str(exc.detail), "http_error"), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:  # the connection dropped (server restart, failover): worth a retry
            log.warning("database connection lost on %s %s", request.method, request.url.path)
            body = error_body("database connection lost; retry the request", "database_unavailable")
            return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
        if _nul_in_text(exc):  # PostgreSQL text cannot hold NUL: the client's input, not our fault
            body = error_body("text must not contain NUL (\\u0000) characters", "validation_error")
            return JSONResponse(body, status_code=422)
        raise exc  # any other database error: a 500, through the handler below

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal server error", "internal_error"), status_code=500)


OpenApiResponses = dict[int | str, dict[str, Any]]  # a route's ``responses=`` (extra documented statuses)
