"""The ``import`` job: the comments of an uploaded CSV, JSONL or Parquet file (``POST /v1/comments/import``).

The file lies in ``job_files`` (stored with the job). Each slice of ``job_import_slice_rows`` rows:

- ``read`` (a read transaction): the next rows after the cursor (a byte offset for CSV / JSONL, a row for
  Parquet), each validated into a :class:`CommentIn` (see :mod:`import_formats`), and the stored payload hash
  of their ids, so that only new comments are analysed: a re-imported file costs no inference;
- ``compute``: the worker's engine analyses the new texts, the keyword analyser makes their terms;
- ``write`` (fenced): the ids are looked up again (an ingest may have stored one meanwhile), then
  :func:`comments.service.create_many` stores the new ones. The counts and the first errors travel in the
  cursor, committed with the slice, so a slice redone after a crash counts nothing twice.

Bad rows are not fatal: the result counts them (``invalid``) and lists the first errors with their row
(and line); a known id with another payload is a ``conflict`` row, the same payload an ``existing`` one (also
an id repeated in the file). The API replicas' vector indexes pick the new rows up in their sync loop.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.comments import service
from nlp_service.comments.import_formats import (
    Format,
    RawRow,
    open_parquet,
    read_text,
    row_group_at,
    to_comment,
)
from nlp_service.comments.schemas import CommentIn
from nlp_service.comments.tables import Comment
from nlp_service.jobs import files, resources
from nlp_service.jobs.files import JobFileReader
from nlp_service.jobs.kinds import JobError, JobKind, JobRun, Step, register

MAX_ERRORS = 100  # errors listed in the result (all are counted)
COUNTS = ("created", "existing", "conflicts", "invalid")
PARQUET_CACHE = "import-parquet"  # run.resources: (job id, row group, its first row, the group as a table)


class ImportParams(BaseModel):
    """Set by the upload endpoint from the stored file."""

    model_config = ConfigDict(extra="forbid")

    format: Format
    filename: str | None = Field(default=None, max_length=500)
    bytes: int = Field(ge=0, description="Size of the stored file")
    rows: int = Field(ge=0, description="Rows (exact for Parquet; for CSV / JSONL counted from line breaks)")
    columns: list[str]
    offset: int = Field(default=0, ge=0, description="Byte offset of the first data row (CSV / JSONL)")
    line: int = Field(default=1, ge=1, description="Line of the first data row (CSV / JSONL)")


@dataclass
class Batch:
    """One slice: where the next one starts, what was found, and (after ``compute``) the analyses."""

    position: dict[str, int]
    rows: int
    eof: bool
    new: list[tuple[RawRow, CommentIn, str]] = field(default_factory=list)  # (row, comment, payload hash)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    errors: list[dict[str, Any]] = field(default_factory=list)
    analyses: list[Any] = field(default_factory=list)
    terms: list[Any] = field(default_factory=list)

    def error(
        self, raw: RawRow, kind: str, message: str, *, field: str = "row", cid: str | None = None
    ) -> None:
        entry: dict[str, Any] = {"row": raw.row}
        if raw.line is not None:
            entry["line"] = raw.line
        if cid is not None:
            entry["id"] = cid
        entry.update({"field": field, "message": message, "type": kind})
        self.errors.append(entry)

    def conflict(self, raw: RawRow, comment: CommentIn) -> None:
        self.counts["conflicts"] += 1
        message = f"comment {comment.id!r} already exists with a different payload"
        self.error(raw, "id_conflict", message, field="id", cid=comment.id)


def first_cursor(params: ImportParams) -> dict[str, Any]:
    return {"row": 0, "offset": params.offset, "line": params.line, **dict.fromkeys(COUNTS, 0), "errors": []}


def plan(run: JobRun[ImportParams], db_session: Session) -> tuple[int, dict[str, Any]]:
    return run.params.rows, first_cursor(run.params)


# -- read ----------------------------------------------------------------------------------------------------
def _text_rows(
    run: JobRun[ImportParams], db_session: Session, limit: int
) -> tuple[list[RawRow], dict[str, int], bool]:
    params, cursor = run.params, run.cursor
    raw = JobFileReader(db_session=db_session, job_id=run.job_id, size=params.bytes, cache=run.resources)
    stream = io.BufferedReader(raw, buffer_size=64 * 1024)
    stream.seek(cursor["offset"])
    got = read_text(
        stream, params.format, params.columns, row=cursor["row"], line=cursor["line"], limit=limit
    )
    offset = cursor["offset"] + got.consumed
    position = {"row": cursor["row"] + len(got.rows), "offset": offset, "line": cursor["line"] + got.lines}
    return got.rows, position, got.eof or offset >= params.bytes


def _parquet_rows(
    run: JobRun[ImportParams], db_session: Session, limit: int
) -> tuple[list[RawRow], dict[str, int], bool]:
    row, total = run.cursor["row"], run.params.rows
    cached = run.resources.get(PARQUET_CACHE)
    if cached is None or cached[0] != run.job_id or not cached[2] <= row < cached[2] + cached[3].num_rows:
        run.resources.pop(PARQUET_CACHE, None)
        if row >= total:
            return [], {"row": row}, True
        reader = JobFileReader(db_session=db_session, job_id=run.job_id, size=run.params.bytes)
        try:
            pf = open_parquet(io.BufferedReader(reader))
        except ValueError as exc:
            raise JobError(str(exc)) from exc
        group, first = row_group_at(pf, row)
        if group >= pf.metadata.num_row_groups:
            return [], {"row": row}, True
        cached = (run.job_id, group, first, pf.read_row_group(group))
        run.resources[PARQUET_CACHE] = cached
    _, _, first, table = cached
    values = table.slice(row - first, limit).to_pylist()
    rows = [RawRow(row + i + 1, None, v) for i, v in enumerate(values)]
    return rows, {"row": row + len(rows)}, row + len(rows) >= total


def _stored(db_session: Session, ids: list[str]) -> dict[str, str]:
    """The payload hash of each of ``ids`` already stored."""
    out: dict[str, str] = {}
    for start in range(0, len(ids), service.CHUNK):
        stmt = select(Comment.id, Comment.payload_hash).where(
            Comment.id.in_(ids[start : start + service.CHUNK])
        )
        out.update((cid, digest) for cid, digest in db_session.execute(stmt))
    return out


def read(run: JobRun[ImportParams], db_session: Session) -> Batch | None:
    """The next slice's rows, validated, with the comments not stored yet picked out."""
    limit = run.settings.job_import_slice_rows
    for key in (PARQUET_CACHE, files.CACHE_KEY):
        cached = run.resources.get(key)
        if cached is not None and cached[0] != run.job_id:  # another job's (cancelled or failed meanwhile)
            run.resources.pop(key, None)
    if run.params.format == "parquet":
        raw_rows, position, eof = _parquet_rows(run, db_session, limit)
    else:
        raw_rows, position, eof = _text_rows(run, db_session, limit)
    if not raw_rows:
        return None
    batch = Batch(position=position, rows=len(raw_rows), eof=eof)
    in_slice: dict[str, str] = {}
    candidates: list[tuple[RawRow, CommentIn, str]] = []
    for raw in raw_rows:
        if raw.values is None:
            batch.counts["invalid"] += 1
            batch.error(raw, "invalid_row", raw.error or "unreadable")
            continue
        comment = to_comment(raw.values, run.params.format, run.settings.max_text_chars)
        if isinstance(comment, list):
            batch.counts["invalid"] += 1
            cid = raw.values.get("id")
            for e in comment:
                batch.error(
                    raw,
                    "invalid_field",
                    e["message"],
                    field=e["field"],
                    cid=cid if isinstance(cid, str) else None,
                )
            continue
        digest = service.payload_hash(comment)
        if comment.id in in_slice:  # the same id earlier in this slice
            if in_slice[comment.id] == digest:
                batch.counts["existing"] += 1
            else:
                batch.conflict(raw, comment)
            continue
        in_slice[comment.id] = digest
        candidates.append((raw, comment, digest))
    stored = _stored(db_session, [c.id for _, c, _ in candidates])
    for raw, comment, digest in candidates:
        if comment.id not in stored:
            batch.new.append((raw, comment, digest))
        elif stored[comment.id] == digest:
            batch.counts["existing"] += 1
        else:
            batch.conflict(raw, comment)
    return batch


# -- compute, write, finish ----------------------------------------------------------------------------------
def compute(run: JobRun[ImportParams], batch: Batch) -> Batch:
    """Analyse the new comments' texts (the worker's engine) and make their keyword terms."""
    if batch.new:
        from nlp_service.search.keywords import KeywordAnalyzer

        texts = [comment.text for _, comment, _ in batch.new]
        keywords = run.resources.setdefault("keywords", KeywordAnalyzer(run.settings.spacy_model))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-terms") as pool:
            terms = pool.submit(keywords.terms, texts)  # spaCy beside the encoder, as ingest does
            batch.analyses = resources.engine(run).analyze(texts)
            batch.terms = terms.result()
    return batch


def write(run: JobRun[ImportParams], db_session: Session, batch: Batch) -> Step:
    """Store the new comments (ids stored since ``read`` are existing or conflict rows) and advance."""
    stored = _stored(db_session, [c.id for _, c, _ in batch.new])
    keep: list[int] = []
    for i, (raw, comment, digest) in enumerate(batch.new):
        if comment.id not in stored:
            keep.append(i)
        elif stored[comment.id] == digest:
            batch.counts["existing"] += 1
        else:
            batch.conflict(raw, comment)
    if keep:
        created = service.create_many(
            db_session=db_session,
            comments=[batch.new[i][1] for i in keep],
            hashes=[batch.new[i][2] for i in keep],
            analyses=[batch.analyses[i] for i in keep],
            terms=[batch.terms[i] for i in keep],
        )
        batch.counts["existing"] += len(created.existing)
        batch.counts["created"] += len(keep) - len(created.existing)
    cursor = dict(run.cursor)
    cursor.update(batch.position)
    for name in COUNTS:
        cursor[name] = cursor.get(name, 0) + batch.counts[name]
    errors = sorted(batch.errors, key=lambda e: int(e["row"]))
    cursor["errors"] = [*cursor.get("errors", []), *errors][:MAX_ERRORS]
    return Step(cursor=cursor, done=batch.rows, total=batch.position["row"] if batch.eof else None)


def finish(run: JobRun[ImportParams], db_session: Session) -> dict[str, Any]:
    """``{rows, created, existing, conflicts, invalid, errors}`` (the first ``MAX_ERRORS`` errors)."""
    for key in (PARQUET_CACHE, files.CACHE_KEY):
        cached = run.resources.get(key)
        if cached is not None and cached[0] == run.job_id:
            run.resources.pop(key, None)
    cursor = run.cursor
    return {
        "rows": cursor.get("row", 0),
        **{n: cursor.get(n, 0) for n in COUNTS},
        "errors": cursor.get("errors", []),
    }


KIND = register(
    JobKind(
        name="import",
        scope="ingest",
        params=ImportParams,
        plan=plan,
        read=read,
        compute=compute,
        write=write,
        finish=finish,
        description="Bulk import of comments from a CSV, JSONL or Parquet file (POST /v1/comments/import)",
    )
)
