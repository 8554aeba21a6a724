"""Bulk-import parsing without a database: CSV / JSONL rows read in slices from byte offsets equal the rows
read at once; unreadable rows are reported with their row and line; row values -> CommentIn."""

from __future__ import annotations

import io
from typing import Any

import pytest

from nlp_service.comments.import_formats import BadFile, Format, inspect, read_text, to_comment

CSV = (
    b"\xef\xbb\xbfid, text ,created_at,source,shop\r\n"
    b'a,"one\r\ntwo",2024-01-01T00:00:00Z,survey,s1\r\n'
    b"\r\n"
    b"b,three,2024-01-01T00:00:00Z,survey\r\n"
    b"c,caf\xe9,2024-01-01T00:00:00Z,survey,s1\r\n"
    b"d,four,2024-01-01T00:00:00Z,survey,\r\n"
    b'e,"five ""quoted""",2024-01-01T00:00:00Z,survey,s2'
)
JSONL = (
    b'{"id": "a", "text": "t", "created_at": "2024-01-01T00:00:00Z", "source": "s"}\n\n[1]\n{bad\n{"id": "e"}'
)


def read_all(data: bytes, fmt: Format, limit: int) -> list[tuple[int, int | None, Any, str | None]]:
    """Read in slices of ``limit`` rows, each from the previous slice's end offset."""
    layout = inspect(io.BytesIO(data), fmt)
    offset, row, line = layout.offset, 0, layout.line
    out: list[tuple[int, int | None, Any, str | None]] = []
    while True:
        stream = io.BufferedReader(io.BytesIO(data))
        stream.seek(offset)
        got = read_text(stream, fmt, layout.columns, row=row, line=line, limit=limit)
        out += [(r.row, r.line, r.values, r.error) for r in got.rows]
        offset, row, line = offset + got.consumed, row + len(got.rows), line + got.lines
        if got.eof:
            return out


@pytest.mark.parametrize("limit", [1, 2, 100])
def test_csv_rows_in_slices(limit: int) -> None:
    assert inspect(io.BytesIO(CSV), "csv").columns == ["id", "text", "created_at", "source", "shop"]
    rows = read_all(CSV, "csv", limit)
    assert [(r[0], r[1]) for r in rows] == [(1, 2), (2, 5), (3, 6), (4, 7), (5, 8)]
    assert rows[0][2]["text"] == "one\r\ntwo"
    assert rows[1][3] == "4 fields, the header has 5"
    assert rows[2][3] == "not UTF-8"
    assert rows[4][2]["text"] == 'five "quoted"'


@pytest.mark.parametrize("limit", [1, 3])
def test_jsonl_rows_in_slices(limit: int) -> None:
    rows = read_all(JSONL, "jsonl", limit)
    assert [(r[0], r[1]) for r in rows] == [(1, 1), (2, 3), (3, 4), (4, 5)]
    assert rows[1][3] == "not a JSON object"
    assert str(rows[2][3]).startswith("not JSON")
    assert rows[3][2] == {"id": "e"}


def test_header_checks() -> None:
    with pytest.raises(BadFile) as exc:
        inspect(io.BytesIO(b"id,text,created_at\n"), "csv")
    assert (exc.value.field, exc.value.row) == ("source", 0)
    with pytest.raises(BadFile) as exc:
        inspect(io.BytesIO(b"id,text,created_at,source,\n"), "csv")
    assert exc.value.field == "column 5"
    with pytest.raises(BadFile):
        inspect(io.BytesIO(b"\n\n"), "jsonl")
    with pytest.raises(BadFile) as exc:
        inspect(io.BytesIO(b"id,text,created_at,source\r\n\r\n"), "csv")
    assert exc.value.row == 1 and "no rows" in str(exc.value)


def test_values_to_comment() -> None:
    base = {"id": "a", "text": "t", "created_at": "2024-01-01T00:00:00+01:00", "source": "s"}
    comment = to_comment({**base, "nps": "7", "csat": "4.5", "region": "", "shop": "s1"}, "csv", 100)
    assert not isinstance(comment, list)
    assert (comment.nps, comment.csat, comment.region, comment.attributes) == (7, 4.5, None, {"shop": "s1"})
    json_row = {**base, "nps": 7, "flag": True, "n": 3, "gone": None, "attributes": {"shop": "s2"}}
    comment = to_comment(json_row, "jsonl", 100)
    assert not isinstance(comment, list)
    assert comment.attributes == {"flag": "true", "n": "3", "shop": "s2"}
    assert to_comment({**base, "nps": "11", "text": "x" * 101}, "csv", 100) == [
        {"field": "text", "message": "String should have at most 100 characters"}
    ]
    errors = to_comment({**base, "nps": "11"}, "csv", 100)
    assert isinstance(errors, list) and errors[0]["field"] == "nps"
    assert to_comment({**base, "tags": ["x"]}, "jsonl", 100) == [
        {"field": "tags", "message": "an attribute must be a string, number or boolean"}
    ]
    assert to_comment({**base, "nps": 7.0}, "jsonl", 100) != to_comment({**base, "nps": 7.0}, "parquet", 100)
