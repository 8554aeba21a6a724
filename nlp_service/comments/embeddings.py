"""Stored embeddings read for the vector index (a cache of the database): by row id, in batches, newest.

With ``encoder`` given, only the vectors that encoder made are read (and those of unknown origin, stored
before vectors recorded their encoder): the index never mixes embedding spaces."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from nlp_service.comments.tables import Comment, Prediction


def of_encoder(encoder: str | None) -> Any:
    """The condition "made by ``encoder``" (true for every row when ``encoder`` is None)."""
    if encoder is None:
        return True
    return or_(Prediction.encoder == encoder, Prediction.encoder.is_(None))


def embeddings(
    *, db_session: Session, row_ids: Sequence[int], encoder: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, (n, dim) float32 embeddings) of the stored comments among ``row_ids``."""
    ids: list[int] = []
    vecs: list[np.ndarray] = []
    wanted = list(dict.fromkeys(int(r) for r in row_ids))
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        for rid, blob in db_session.execute(
            select(Prediction.row_id, Prediction.embedding).where(
                Prediction.row_id.in_(chunk), of_encoder(encoder)
            )
        ):
            ids.append(rid)
            vecs.append(np.frombuffer(blob, dtype=np.float32))
    return _stack(ids, vecs)


def _stack(ids: list[int], vecs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    return np.asarray(ids, dtype=np.int64), np.vstack(vecs).astype(np.float32, copy=False)


def all_row_ids(*, db_session: Session, encoder: str | None = None) -> np.ndarray:
    """Every stored row id (int64, ascending); with ``encoder``, of the comments whose vector it made."""
    if encoder is None:
        stmt = select(Comment.row_id).order_by(Comment.row_id)
    else:
        stmt = select(Prediction.row_id).where(of_encoder(encoder)).order_by(Prediction.row_id)
    return np.fromiter(db_session.scalars(stmt), dtype=np.int64)


def row_ids_after(*, db_session: Session, after: int, limit: int) -> list[int]:
    """Up to ``limit`` row ids above ``after`` of comments stored with their predictions, ascending."""
    stmt = select(Prediction.row_id).where(Prediction.row_id > after).order_by(Prediction.row_id).limit(limit)
    return list(db_session.scalars(stmt))


def newest_embeddings(
    *, db_session: Session, at_most: int, limit: int, encoder: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, embeddings) of the ``limit`` highest row ids up to ``at_most``."""
    rows = db_session.execute(
        select(Prediction.row_id, Prediction.embedding)
        .where(Prediction.row_id <= at_most, of_encoder(encoder))
        .order_by(Prediction.row_id.desc())
        .limit(limit)
    ).all()
    return _stack([r for r, _ in rows], [np.frombuffer(b, dtype=np.float32) for _, b in rows])


def iter_embeddings(
    *, db_session: Session, after: int = 0, batch: int = 20_000, encoder: str | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (row ids, embeddings) batches in row id order, for (re)building the vector index."""
    while True:
        rows = db_session.execute(
            select(Prediction.row_id, Prediction.embedding)
            .where(Prediction.row_id > after, of_encoder(encoder))
            .order_by(Prediction.row_id)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield _stack([r for r, _ in rows], [np.frombuffer(b, dtype=np.float32) for _, b in rows])
        after = rows[-1][0]


def other_encoders(*, db_session: Session, encoder: str) -> dict[str, int]:
    """Stored vectors made by encoders other than ``encoder``: count per encoder."""
    from sqlalchemy import func

    stmt = (
        select(Prediction.encoder, func.count())
        .where(Prediction.encoder.is_not(None), Prediction.encoder != encoder)
        .group_by(Prediction.encoder)
    )
    return {str(name): int(n) for name, n in db_session.execute(stmt)}


def pack_sentences(vectors: np.ndarray | None) -> bytes | None:
    """A comment's sentence embeddings ``(s, dim)`` as float16 bytes for ``predictions.sentence_embeddings``
    (None for a comment of one sentence: its own embedding stands for it)."""
    if vectors is None or len(vectors) < 2:
        return None
    return np.asarray(vectors, dtype=np.float16).tobytes()


def unpack_sentences(blob: bytes | None, dim: int) -> np.ndarray | None:
    """The ``(s, dim)`` float32 sentence embeddings stored by :func:`pack_sentences`, or None."""
    if not blob:
        return None
    return np.frombuffer(blob, dtype=np.float16).reshape(-1, dim).astype(np.float32)
