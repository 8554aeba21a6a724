"""``POST /v1/comments/import``: upload a CSV, JSONL or Parquet file of comments as an ``import`` job.

The body streams into a temporary file (in memory up to one chunk, then on disk), capped at
``NLP_JOB_UPLOAD_MAX_BYTES`` (413; the body-size middleware applies that limit to this path instead of
``NLP_MAX_BODY_BYTES``). The header (CSV), first row (JSONL) or schema (Parquet) is checked (422 naming the
row and field), then the file's chunks and the job are stored in one transaction: 202 with the job.
"""

from __future__ import annotations

import tempfile
from typing import IO, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nlp_service.auth.deps import CurrentPrincipal
from nlp_service.comments.bulk_import import ImportParams
from nlp_service.comments.import_formats import FORMATS, MEDIA_TYPES, BadFile, Format, NoPyarrow, inspect
from nlp_service.deps import SessionFactoryDep, SettingsDep, in_transaction
from nlp_service.errors import ErrorResponse, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from nlp_service.jobs import files
from nlp_service.jobs import service as jobs
from nlp_service.jobs.schemas import JobOut
from nlp_service.jobs.views import accepted, to_out

router = APIRouter()

FLUSH_BYTES = 1024 * 1024  # the upload is written to the spool file in pieces of this size


def _format(request: Request, given: Format | None) -> Format:
    if given is not None:
        return given
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media in MEDIA_TYPES:
        return MEDIA_TYPES[media]
    raise UnsupportedMediaType(
        f"cannot tell the file's format from content-type {content_type or 'none'!r}: send one of "
        f"{', '.join(MEDIA_TYPES)} or pass format={'|'.join(FORMATS)}",
        detail=[{"field": "content-type", "message": "expected a CSV, JSONL or Parquet media type"}],
    )


class Upload:
    """The received body: a spool file, its size and line breaks."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=files.CHUNK_BYTES)
        self.size = 0
        self.newlines = 0
        self.last = b""

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the file exceeds {self.max_bytes} bytes (NLP_JOB_UPLOAD_MAX_BYTES)",
            detail=[{"field": "body", "message": f"at most {self.max_bytes} bytes"}],
        )

    async def receive(self, request: Request) -> None:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large()
        pending: list[bytes] = []
        held = 0
        async for piece in request.stream():
            if not piece:
                continue
            self.size += len(piece)
            if self.size > self.max_bytes:
                raise self._too_large()
            self.newlines += piece.count(b"\n")
            self.last = piece[-1:]
            pending.append(piece)
            held += len(piece)
            if held >= FLUSH_BYTES:
                await run_in_threadpool(self.file.write, b"".join(pending))
                pending, held = [], 0
        if pending:
            await run_in_threadpool(self.file.write, b"".join(pending))
        self.file.seek(0)

    def lines(self) -> int:
        """Lines of text (a last line without a line break counts)."""
        return self.newlines + int(self.size > 0 and self.last != b"\n")


def _check(upload: Upload, fmt: Format) -> Any:
    if upload.size == 0:
        raise InvalidInput("the file is empty", detail=[{"field": "body", "message": "empty"}])
    try:
        return inspect(upload.file, fmt)
    except NoPyarrow as exc:
        raise UnsupportedMediaType(str(exc), detail=[{"field": "format", "message": str(exc)}]) from exc
    except BadFile as exc:
        entry: dict[str, Any] = {"field": exc.field, "message": str(exc)}
        if exc.row is not None:
            entry["row"] = exc.row
        raise InvalidInput(f"cannot import this {fmt} file: {exc}", detail=[entry]) from exc
    finally:
        upload.file.seek(0)


@router.post(
    "/import",
    status_code=202,
    response_model=JobOut,
    responses={
        202: {"description": "Queued; follow Location (GET /v1/jobs/{id}) for progress and the result"},
        413: {"model": ErrorResponse, "description": "The file exceeds NLP_JOB_UPLOAD_MAX_BYTES"},
        415: {"model": ErrorResponse, "description": "Unknown format, or Parquet without pyarrow"},
        422: {
            "model": ErrorResponse,
            "description": "An empty file or no rows, a header without a required column, not Parquet",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in MEDIA_TYPES},
        }
    },
)
async def import_comments(
    request: Request,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    format: Annotated[
        Format | None, Query(description="csv, jsonl or parquet (else from content-type)")
    ] = None,
    filename: Annotated[str | None, Query(max_length=500, description="Kept with the job")] = None,
) -> JSONResponse:
    """Import the comments of a file (the body) as a background job: 202 with the job (``Location``).

    Columns: ``id``, ``text``, ``created_at``, ``source`` (required) and the other fields of a comment;
    other columns become attributes. Known ids with the same payload count as existing; bad rows and
    conflicting ids are counted and listed in the job's result, they do not fail the job.
    """
    fmt = _format(request, format)
    upload = Upload(settings.job_upload_max_bytes)
    try:
        await upload.receive(request)
        layout = await run_in_threadpool(_check, upload, fmt)
        if layout.rows is not None:
            rows = layout.rows
        else:
            rows = max(0, upload.lines() - (layout.line - 1))
        params = ImportParams(
            format=fmt,
            filename=filename,
            bytes=upload.size,
            rows=rows,
            columns=layout.columns,
            offset=layout.offset,
            line=layout.line,
        ).model_dump(mode="json")

        def submit(db_session: Session) -> JobOut:
            job = jobs.submit(
                db_session=db_session, kind="import", params=params, created_by=principal.key_id
            )
            job.total = params["rows"]  # the estimate, shown until the worker plans the job
            files.store(db_session=db_session, job_id=job.id, source=upload.file)
            return to_out(job)

        job = await in_transaction(sessions, submit)
    finally:
        upload.file.close()
    return accepted(job)
