"""Read CSV / TSV / JSONL / Parquet training files and validate them into typed datasets.

Every problem raises :class:`TrainingDataError` with a message naming the file, column and rows at fault.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_service.inference.encoder import Encoded
from training.errors import TrainingDataError

MIN_PER_CLASS = 2  # a class with fewer training examples is refused
_MAX_LISTED = 5


@dataclass
class Table:
    """A file read as named columns of raw values."""

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]


@dataclass
class ClassData:
    texts: list[str]
    labels: np.ndarray  # (n,) class ids
    label_names: list[str]
    dropped_duplicates: int = 0
    encoded: Encoded | None = None  # features of ``texts`` (row-aligned) once encoded


@dataclass
class MultiLabelData:
    texts: list[str]
    targets: np.ndarray  # (n, k) 0/1
    label_names: list[str]
    dropped_duplicates: int = 0
    encoded: Encoded | None = None  # features of ``texts`` (row-aligned) once encoded


@dataclass
class RegressionData:
    texts: list[str]
    targets: np.ndarray  # (n, k) float
    output_names: list[str]
    dropped_duplicates: int = 0
    encoded: Encoded | None = None  # features of ``texts`` (row-aligned) once encoded
    extra: dict[str, Any] = field(default_factory=dict)


Data = ClassData | MultiLabelData | RegressionData


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(paths: list[Path]) -> dict[str, Any]:
    """sha256 of every data file and one combined digest."""
    files = {str(p): file_sha256(p) for p in paths}
    combined = hashlib.sha256("".join(f"{Path(p).name}:{h}\n" for p, h in files.items()).encode()).hexdigest()
    return {"sha256": combined, "files": {Path(p).name: h for p, h in files.items()}}


def _rows_listed(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:_MAX_LISTED])
    return shown + (f" (and {len(rows) - _MAX_LISTED} more)" if len(rows) > _MAX_LISTED else "")


def read_table(path: Path | str) -> Table:
    """Read ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` or ``.parquet`` into rows of column -> value."""
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            with path.open(encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                rows = list(reader)
                columns = list(reader.fieldnames or [])
            if any(None in r for r in rows):
                bad = [i + 2 for i, r in enumerate(rows) if None in r]
                raise TrainingDataError(f"{path}: lines {_rows_listed(bad)} have more fields than the header")
        elif suffix in (".jsonl", ".ndjson"):
            rows, columns = [], []
            with path.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise TrainingDataError(
                            f"{path}: line {lineno} is not valid JSON ({exc.msg})"
                        ) from exc
                    if not isinstance(obj, dict):
                        raise TrainingDataError(f"{path}: line {lineno} is not a JSON object")
                    rows.append(obj)
                    columns += [k for k in obj if k not in columns]
        elif suffix == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError as exc:
                raise TrainingDataError(
                    f"{path}: Parquet input needs pyarrow: pip install 'nlp-service[parquet]'"
                ) from exc
            table = pq.read_table(path)
            columns = list(table.column_names)
            rows = table.to_pylist()
        else:
            raise TrainingDataError(
                f"{path}: unsupported file type {suffix!r} (use .csv, .tsv, .jsonl or .parquet)"
            )
    except UnicodeDecodeError as exc:
        raise TrainingDataError(f"{path}: not valid UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise TrainingDataError(f"{path}: cannot read ({exc})") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        if isinstance(exc, TrainingDataError):
            raise
        raise TrainingDataError(f"{path}: cannot parse ({exc})") from exc
    if not rows:
        raise TrainingDataError(f"{path}: no data rows")
    return Table(path=path, columns=columns, rows=rows)


def _require_columns(table: Table, names: list[str]) -> None:
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise TrainingDataError(
            f"{table.path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"columns present: {', '.join(table.columns)}"
        )


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _texts(table: Table, text_col: str, label_cols: list[str]) -> list[str]:
    _require_columns(table, [text_col, *label_cols])
    empty = [
        i + 1 for i, r in enumerate(table.rows) if any(_is_empty(r.get(c)) for c in [text_col, *label_cols])
    ]
    if empty:
        raise TrainingDataError(
            f"{table.path}: {len(empty)} empty row(s) (blank text or label), data rows {_rows_listed(empty)}"
        )
    return [str(r[text_col]) for r in table.rows]


def _dedupe(table: Table, keys: list[tuple[Any, ...]], drop: bool) -> list[int]:
    """Row indices to keep; exact duplicate rows (same text and label) are an error unless ``drop``."""
    seen: dict[tuple[Any, ...], int] = {}
    dups: list[int] = []
    keep: list[int] = []
    for i, key in enumerate(keys):
        if key in seen:
            dups.append(i + 1)
        else:
            seen[key] = i
            keep.append(i)
    if dups and not drop:
        raise TrainingDataError(
            f"{table.path}: {len(dups)} duplicate row(s) (same text and label), "
            f"data rows {_rows_listed(dups)}; remove them or pass --drop-duplicates"
        )
    return keep


def classification(
    table: Table,
    text_col: str,
    label_col: str,
    *,
    labels: list[str] | None = None,
    drop_duplicates: bool = False,
    min_per_class: int = MIN_PER_CLASS,
) -> ClassData:
    """Single-label data; ``labels`` fixes the label set (unknown labels are refused)."""
    texts = _texts(table, text_col, [label_col])
    raw = [str(r[label_col]).strip() for r in table.rows]
    names = list(labels) if labels else sorted(set(raw))
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise TrainingDataError(
            f"{table.path}: unknown label(s) {', '.join(repr(u) for u in unknown[:10])} "
            f"in column {label_col!r}; expected one of {', '.join(names)}"
        )
    keep = _dedupe(table, list(zip(texts, raw, strict=True)), drop_duplicates)
    texts, raw = [texts[i] for i in keep], [raw[i] for i in keep]
    counts = Counter(raw)
    too_few = [f"{n!r} ({counts.get(n, 0)})" for n in names if counts.get(n, 0) < min_per_class]
    if too_few:
        raise TrainingDataError(
            f"{table.path}: class(es) with fewer than {min_per_class} examples: {', '.join(too_few)}"
        )
    index = {n: i for i, n in enumerate(names)}
    return ClassData(
        texts=texts,
        labels=np.asarray([index[x] for x in raw], dtype=np.int64),
        label_names=names,
        dropped_duplicates=len(table.rows) - len(keep),
    )


def multilabel(
    table: Table,
    text_col: str,
    label_col: str,
    *,
    sep: str = ",",
    labels: list[str] | None = None,
    drop_duplicates: bool = False,
    min_per_class: int = MIN_PER_CLASS,
) -> MultiLabelData:
    """Multi-label data: ``label_col`` holds label names separated by ``sep`` (or a list in JSONL/Parquet)."""
    texts = _texts(table, text_col, [label_col])
    raw: list[tuple[str, ...]] = []
    for r in table.rows:
        value = r[label_col]
        parts = value if isinstance(value, list | tuple) else str(value).split(sep)
        raw.append(tuple(sorted({str(p).strip() for p in parts if str(p).strip()})))
    names = list(labels) if labels else sorted({x for row in raw for x in row})
    unknown = sorted({x for row in raw for x in row} - set(names))
    if unknown:
        raise TrainingDataError(
            f"{table.path}: unknown label(s) {', '.join(repr(u) for u in unknown[:10])} "
            f"in column {label_col!r}; expected names from: {', '.join(names)}"
        )
    keep = _dedupe(table, list(zip(texts, raw, strict=True)), drop_duplicates)
    texts, raw = [texts[i] for i in keep], [raw[i] for i in keep]
    counts = Counter(x for row in raw for x in row)
    too_few = [f"{n!r} ({counts.get(n, 0)})" for n in names if counts.get(n, 0) < min_per_class]
    if too_few:
        raise TrainingDataError(
            f"{table.path}: label(s) with fewer than {min_per_class} examples: {', '.join(too_few)}"
        )
    index = {n: i for i, n in enumerate(names)}
    targets = np.zeros((len(texts), len(names)), dtype=np.float32)
    for i, row in enumerate(raw):
        targets[i, [index[x] for x in row]] = 1.0
    return MultiLabelData(
        texts=texts, targets=targets, label_names=names, dropped_duplicates=len(table.rows) - len(keep)
    )


def regression(
    table: Table, text_col: str, label_cols: list[str], *, drop_duplicates: bool = False
) -> RegressionData:
    """Numeric targets from one or more columns."""
    texts = _texts(table, text_col, label_cols)
    values = np.zeros((len(texts), len(label_cols)), dtype=np.float64)
    for j, col in enumerate(label_cols):
        bad: list[int] = []
        for i, r in enumerate(table.rows):
            try:
                v = float(r[col])
                if not math.isfinite(v) or isinstance(r[col], bool):
                    raise ValueError
                values[i, j] = v
            except (TypeError, ValueError):
                bad.append(i + 1)
        if bad:
            raise TrainingDataError(
                f"{table.path}: column {col!r} must be numeric for regression; "
                f"non-numeric value(s) in data rows {_rows_listed(bad)} "
                f"(e.g. {table.rows[bad[0] - 1][col]!r})"
            )
    keep = _dedupe(table, [(t, *v) for t, v in zip(texts, values.tolist(), strict=True)], drop_duplicates)
    if len(keep) < 3:
        raise TrainingDataError(f"{table.path}: regression needs at least 3 rows, got {len(keep)}")
    return RegressionData(
        texts=[texts[i] for i in keep],
        targets=values[keep],
        output_names=list(label_cols),
        dropped_duplicates=len(table.rows) - len(keep),
    )
