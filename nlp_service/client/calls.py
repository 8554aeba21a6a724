"""Every request the client makes, built once (``Call``: method, path, body, how to read the answer); the
sync and async clients only send them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter

from nlp_service.anomaly.schemas import AlertOut, AlertPage, DetectResponse
from nlp_service.classify.schemas import ClassifyResponse
from nlp_service.comments.import_formats import FORMATS, Format
from nlp_service.comments.schemas import CommentOut, CommentPage, IngestResponse
from nlp_service.incidents.schemas import IncidentOut, IncidentPage
from nlp_service.jobs.schemas import JobOut
from nlp_service.search.schemas import SearchResponse

T = TypeVar("T")
JOB_DONE = frozenset({"succeeded", "failed", "cancelled"})
SUFFIX_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    result: Callable[[Any], T]
    json: Any = None
    content: bytes | None = None  # a raw body (a file to import), instead of json
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _model(cls: type[T]) -> Callable[[Any], T]:
    return TypeAdapter(cls).validate_python


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- the operations ------------------------------------------------------------------------------------------
def classify_call(texts: Sequence[str], include: Sequence[str] | None) -> Call[ClassifyResponse]:
    body: dict[str, Any] = {"texts": list(texts), **({"include": list(include)} if include else {})}
    return Call("POST", "/v1/classify", _model(ClassifyResponse), json=body)


def ingest_call(comments: Sequence[Mapping[str, Any] | BaseModel]) -> Call[IngestResponse]:
    items = [
        c.model_dump(mode="json", exclude_none=True) if isinstance(c, BaseModel) else dict(c)
        for c in comments
    ]
    return Call("POST", "/v1/comments", _model(IngestResponse), json={"comments": items})


def search_call(
    query: str | None, comment_id: str | None, k: int, mode: str, filters: Mapping[str, Any] | None
) -> Call[SearchResponse]:
    body = _params(
        query=query, comment_id=comment_id, k=k, mode=mode, filters=dict(filters) if filters else None
    )
    return Call("POST", "/v1/search", _model(SearchResponse), json=body)


def alerts_call(offset: int, limit: int, filters: Mapping[str, Any]) -> Call[AlertPage]:
    return Call("GET", "/v1/alerts", _model(AlertPage), params=_params(**filters, offset=offset, limit=limit))


def comments_call(cursor: str | None, limit: int, filters: Mapping[str, Any]) -> Call[CommentPage]:
    return Call(
        "GET", "/v1/comments", _model(CommentPage), params=_params(**filters, cursor=cursor, limit=limit)
    )


def alert_call(alert_id: str, action: str | None = None, note: str | None = None) -> Call[AlertOut]:
    if action is None:
        return Call("GET", f"/v1/alerts/{alert_id}", _model(AlertOut))
    return Call("POST", f"/v1/alerts/{alert_id}/{action}", _model(AlertOut), json=_params(note=note))


def detect_call(at: str | None, lookback_s: int | None) -> Call[DetectResponse]:
    return Call("POST", "/v1/detect", _model(DetectResponse), json=_params(at=at, lookback_s=lookback_s))


def comment_call(comment_id: str) -> Call[CommentOut]:
    return Call("GET", f"/v1/comments/{comment_id}", _model(CommentOut))


def incidents_call(offset: int, limit: int, filters: Mapping[str, Any]) -> Call[IncidentPage]:
    return Call(
        "GET", "/v1/incidents", _model(IncidentPage), params=_params(**filters, offset=offset, limit=limit)
    )


def incident_call(incident_id: str, action: str | None = None, note: str | None = None) -> Call[IncidentOut]:
    if action is None:
        return Call("GET", f"/v1/incidents/{incident_id}", _model(IncidentOut))
    return Call("POST", f"/v1/incidents/{incident_id}/{action}", _model(IncidentOut), json=_params(note=note))


def import_call(data: bytes, fmt: Format, filename: str | None) -> Call[JobOut]:
    """A file of comments (csv, jsonl or parquet) to import as a background job."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return Call(
        "POST",
        "/v1/comments/import",
        _model(JobOut),
        content=data,
        params=_params(format=fmt, filename=filename),
        headers={"content-type": "application/octet-stream"},
    )


def import_source(
    data: bytes | Path, fmt: Format | None, filename: str | None
) -> tuple[bytes, Format, str | None]:
    """The body, format and name of a file to import: a path's format from its suffix unless given."""
    if isinstance(data, Path):
        fmt = fmt or SUFFIX_FORMATS.get(data.suffix.lower())
        filename = filename or data.name
        data = data.read_bytes()
    if fmt is None:
        raise ValueError(f"give format= ({', '.join(FORMATS)}): it cannot be told from the data")
    return data, fmt, filename


def job_call(job_id: str, action: str | None = None) -> Call[JobOut]:
    if action is None:
        return Call("GET", f"/v1/jobs/{job_id}", _model(JobOut))
    return Call("POST", f"/v1/jobs/{job_id}/{action}", _model(JobOut))


def json_call(method: str, path: str) -> Call[dict[str, Any]]:
    return Call(method, path, _model(dict[str, Any]))
