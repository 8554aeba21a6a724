"""Bulk-import file formats (CSV, JSONL, Parquet): the header check at upload and rows -> ``CommentIn``.

Columns are the fields of :class:`CommentIn` (``id``, ``text``, ``created_at`` and ``source`` required); any
other column becomes an attribute (its column name the key; empty values are left out, numbers and booleans
kept as text). A CSV or Parquet ``attributes`` column may hold a JSON object. CSV is UTF-8 (a BOM is
skipped), comma-separated with a header row, RFC 4180 quoting; an empty cell of an optional field is null.
JSONL is one JSON object per line (blank lines are skipped). Rows are numbered from 1 (the first data row;
CSV header and blank lines not counted); CSV and JSONL errors also name the line. Pure: no database.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any, Literal

from pydantic import ValidationError

from nlp_service.comments.schemas import CommentIn

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl", "parquet")
MEDIA_TYPES: dict[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/jsonlines": "jsonl",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
FIELDS = tuple(CommentIn.model_fields)
REQUIRED = tuple(name for name, info in CommentIn.model_fields.items() if info.is_required())
BOM = b"\xef\xbb\xbf"
PYARROW_HINT = "Parquet import needs pyarrow: pip install 'nlp-service[parquet]'"


class BadFile(ValueError):
    """The file cannot be imported (unreadable, or a header without a required column)."""

    def __init__(self, message: str, *, field: str = "body", row: int | None = None) -> None:
        super().__init__(message)
        self.field, self.row = field, row


class NoPyarrow(BadFile):
    """Parquet without pyarrow installed."""


@dataclass(frozen=True)
class Layout:
    """What the upload check found: the columns, where the data rows start (byte offset, line), rows."""

    columns: list[str]
    offset: int = 0
    line: int = 1
    rows: int | None = None  # exact (Parquet) or None (counted from line breaks)


@dataclass
class RawRow:
    row: int
    line: int | None
    values: dict[str, Any] | None  # None: unreadable, see error
    error: str | None = None


@dataclass
class TextSlice:
    rows: list[RawRow] = field(default_factory=list)
    consumed: int = 0  # bytes read past the start offset
    lines: int = 0  # line breaks read
    eof: bool = False


def _check_columns(columns: list[str], row: int | None) -> None:
    seen: set[str] = set()
    for i, name in enumerate(columns):
        if not name:
            raise BadFile(f"column {i + 1} of the header has no name", field=f"column {i + 1}", row=row)
        if name in seen:
            raise BadFile(f"duplicate column {name!r}", field=name, row=row)
        seen.add(name)
    for name in REQUIRED:
        if name not in seen:
            where = "the header" if row == 0 else f"row {row}" if row else "the file"
            raise BadFile(
                f"{where} has no {name!r} column (required: {', '.join(REQUIRED)})", field=name, row=row
            )


# -- reading CSV and JSONL from a byte offset ----------------------------------------------------------------
class _Lines:
    """Lines of a binary stream, decoded, counting the bytes and line breaks handed out."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.consumed = 0
        self.lines = 0
        self.bad_utf8 = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self.stream.readline()
        if not raw:
            raise StopIteration
        self.consumed += len(raw)
        self.lines += raw.endswith(b"\n")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad_utf8 = True
            return raw.decode("utf-8", errors="replace")


def _records(reader: Iterator[list[str]]) -> Iterator[bool]:
    """True for the first non-empty record (one that does not parse counts: its row reports it)."""
    try:
        for cells in reader:
            if cells:
                yield True
                return
    except csv.Error:
        yield True


def inspect(stream: IO[bytes], fmt: Format) -> Layout:
    """Check the header (CSV), the first row (JSONL) or the schema (Parquet); ``BadFile`` if unusable."""
    if fmt == "parquet":
        pf = open_parquet(stream)
        columns = list(pf.schema_arrow.names)
        _check_columns(columns, None)
        return Layout(columns=columns, rows=pf.metadata.num_rows)
    skip = len(BOM) if stream.read(len(BOM)) == BOM else 0
    stream.seek(skip)
    lines = _Lines(stream)
    if fmt == "csv":
        reader = csv.reader(lines)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise BadFile(f"the header is not valid CSV: {exc}", field="header", row=0) from exc
        if header is None:
            raise BadFile("the file is empty", row=0)
        if lines.bad_utf8:
            raise BadFile("the header is not UTF-8", field="header", row=0)
        columns = [name.strip() for name in header]
        _check_columns(columns, 0)
        layout = Layout(columns=columns, offset=skip + lines.consumed, line=lines.lines + 1)
        if not any(_records(reader)):
            raise BadFile("the file has no rows after the header", row=1)
        return layout
    for text in lines:
        if not text.strip():
            continue
        try:
            first = json.loads(text)
        except ValueError as exc:
            raise BadFile(f"row 1 (line {lines.lines}) is not JSON: {exc}", row=1) from exc
        if lines.bad_utf8 or not isinstance(first, dict):
            raise BadFile(f"row 1 (line {lines.lines}) is not a UTF-8 JSON object", row=1)
        _check_columns(list(first), 1)
        return Layout(columns=list(first), offset=skip)
    raise BadFile("the file has no rows", row=1)


def read_text(
    stream: IO[bytes], fmt: Format, columns: list[str], *, row: int, line: int, limit: int
) -> TextSlice:
    """Up to ``limit`` rows of a CSV or JSONL stream positioned at a row's start (numbered ``row + 1``...)."""
    lines = _Lines(stream)
    out = TextSlice()
    if fmt == "csv":
        reader = csv.reader(lines)
        while len(out.rows) < limit:
            start_line, lines.bad_utf8 = line + lines.lines, False
            try:
                cells = next(reader, None)
            except csv.Error as exc:
                out.rows.append(RawRow(row + len(out.rows) + 1, start_line, None, f"not valid CSV: {exc}"))
                continue
            if cells is None:
                out.eof = True
                break
            if cells == []:  # an empty line
                continue
            raw = RawRow(row + len(out.rows) + 1, start_line, None)
            if lines.bad_utf8:
                raw.error = "not UTF-8"
            elif len(cells) != len(columns):
                raw.error = f"{len(cells)} fields, the header has {len(columns)}"
            else:
                raw.values = dict(zip(columns, cells, strict=True))
            out.rows.append(raw)
    else:
        while len(out.rows) < limit:
            lines.bad_utf8 = False
            text = next(lines, None)
            if text is None:
                out.eof = True
                break
            if not text.strip():
                continue
            raw = RawRow(row + len(out.rows) + 1, line + lines.lines - text.endswith("\n"), None)
            try:
                value = json.loads(text)
            except ValueError as exc:
                raw.error = f"not JSON: {exc}"
            else:
                if lines.bad_utf8:
                    raw.error = "not UTF-8"
                elif not isinstance(value, dict):
                    raw.error = "not a JSON object"
                else:
                    raw.values = value
            out.rows.append(raw)
    out.consumed, out.lines = lines.consumed, lines.lines
    return out


# -- Parquet -------------------------------------------------------------------------------------------------
def open_parquet(stream: IO[bytes]) -> Any:
    """A ``pyarrow.parquet.ParquetFile`` over ``stream``; ``NoPyarrow`` / ``BadFile`` if it cannot be."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise NoPyarrow(PYARROW_HINT) from exc
    try:
        return pq.ParquetFile(stream)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a file that is not Parquet
        raise BadFile(f"not a Parquet file: {exc}") from exc


def row_group_at(pf: Any, row: int) -> tuple[int, int]:
    """(row group index, its first row) of the group holding ``row``; (num_row_groups, total) past the end."""
    first = 0
    for i in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(i).num_rows
        if row < first + n:
            return i, first
        first += n
    return pf.metadata.num_row_groups, first


# -- values -> CommentIn -------------------------------------------------------------------------------------
def _attribute(value: Any) -> str | None:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise ValueError("an attribute must be a string, number or boolean")


def _field(name: str, value: Any, fmt: Format) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if fmt == "csv" and isinstance(value, str):
        if value == "" and name not in REQUIRED:
            return None
        if name == "nps" and value.strip().lstrip("-").isdigit():
            return int(value)
        if name == "csat":
            try:
                return float(value)
            except ValueError:
                return value
    if name == "attributes" and isinstance(value, str) and fmt != "jsonl":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if fmt == "parquet" and name == "attributes" and isinstance(value, list):
        return dict(value) if all(isinstance(p, tuple) and len(p) == 2 for p in value) else value  # a map
    if fmt == "parquet" and name == "nps" and isinstance(value, float) and value.is_integer():
        return int(value)  # an integer column with nulls reads as float
    return value


def to_comment(values: dict[str, Any], fmt: Format, max_text_chars: int) -> CommentIn | list[dict[str, str]]:
    """The row as a comment, or its errors (``field``, ``message``)."""
    data: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for name, value in values.items():
        if name in FIELDS:
            value = _field(name, value, fmt)
            if value is not None:
                data[name] = value
            continue
        try:
            text = _attribute(value)
        except ValueError as exc:
            errors.append({"field": name, "message": str(exc)})
            continue
        if text is not None:
            attributes[name] = text
    if attributes:
        given = data.get("attributes")
        data["attributes"] = {**attributes, **given} if isinstance(given, dict) else given or attributes
    text = data.get("text")
    if isinstance(text, str) and len(text) > max_text_chars:
        errors.append({"field": "text", "message": f"String should have at most {max_text_chars} characters"})
    if errors:
        return errors
    try:
        return CommentIn.model_validate(data)
    except ValidationError as exc:
        return [
            {"field": ".".join(map(str, e["loc"])) or "row", "message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
