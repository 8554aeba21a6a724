"""Comments, their predictions, and the derived tables that filters and search read.

- ``comments``: what the client sent (``id`` is the client's id, ``row_id`` the internal key that the vector
  index uses; row ids are never reused, also on SQLite thanks to AUTOINCREMENT).
- ``predictions``: one row per comment with what the engine predicted, including the search embedding.
- ``comment_topics`` / ``comment_attributes`` / ``comment_terms``: relational copies of the topics, the
  free attributes and the keyword terms (BM25), so filters and keyword search are plain indexed SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from nlp_service.db import Base, UTCDateTime

RowId = BigInteger().with_variant(Integer(), "sqlite")


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_created_at_row_id", "created_at", "row_id"),
        {"sqlite_autoincrement": True},
    )

    row_id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(200), unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(64), index=True)
    touchpoint: Mapped[str | None] = mapped_column(String(100), index=True)
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    nps: Mapped[int | None] = mapped_column(SmallInteger)
    csat: Mapped[float | None] = mapped_column(Float)
    customer_id: Mapped[str | None] = mapped_column(String(200), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    payload_hash: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Prediction(Base):
    __tablename__ = "predictions"

    row_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("comments.row_id", ondelete="CASCADE"), primary_key=True
    )
    sentiment_label: Mapped[str] = mapped_column(String(16), index=True)
    sentiment_score: Mapped[float] = mapped_column(Float)
    sentiment_probs: Mapped[dict[str, float]] = mapped_column(JSON)
    emotion_labels: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    emotion_probs: Mapped[dict[str, float]] = mapped_column(JSON)
    dominant_emotion: Mapped[str] = mapped_column(String(32))
    intensity: Mapped[float] = mapped_column(Float)
    intensities: Mapped[dict[str, float]] = mapped_column(JSON)
    valence: Mapped[float] = mapped_column(Float)
    arousal: Mapped[float] = mapped_column(Float)
    topics: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    n_terms: Mapped[int] = mapped_column(Integer, default=0)  # document length for BM25
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised
    model_versions: Mapped[dict[str, str]] = mapped_column(JSON)
    # Taxonomy version whose model tagged ``topics`` (None: the shipped file, before versions existed).
    topics_version: Mapped[int | None] = mapped_column(Integer)
    # Sentence embeddings of a multi-sentence comment (float16, (sentences, dim)): sentence-aware re-tagging.
    sentence_embeddings: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The encoder that made ``embedding`` (``encoder_version``): search reads only the serving encoder's
    # vectors; a re-embedding job brings the others over (``comments.reembed``).
    encoder: Mapped[str | None] = mapped_column(String(120), index=True)


class CommentFeatures(Base):
    """The heads' input features of a comment (float16; ``spec`` names the pooled layers and the encoder),
    so that a promoted head re-scores stored comments without re-encoding (``comments.rescore``)."""

    __tablename__ = "comment_features"

    row_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("comments.row_id", ondelete="CASCADE"), primary_key=True
    )
    spec: Mapped[str] = mapped_column(String(160))
    features: Mapped[bytes] = mapped_column(LargeBinary)


class CommentTopic(Base):
    __tablename__ = "comment_topics"
    __table_args__ = (Index("ix_comment_topics_topic_id_row_id", "topic_id", "row_id"),)

    row_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("comments.row_id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    score: Mapped[float] = mapped_column(Float)


class CommentAttribute(Base):
    __tablename__ = "comment_attributes"
    __table_args__ = (Index("ix_comment_attributes_key_value_row_id", "key", "value", "row_id"),)

    row_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("comments.row_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


class CommentTerm(Base):
    """Keyword postings: term frequency of each lemmatised term of a comment (BM25)."""

    __tablename__ = "comment_terms"
    __table_args__ = (Index("ix_comment_terms_term_row_id", "term", "row_id"),)

    row_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("comments.row_id", ondelete="CASCADE"), primary_key=True
    )
    term: Mapped[str] = mapped_column(String(100), primary_key=True)
    tf: Mapped[int] = mapped_column(Integer)
