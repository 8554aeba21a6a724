"""Zero-shot topic scoring: compare comment embeddings with prototypes built from a taxonomy.

Each topic is represented by the embeddings of its description and example phrases. A comment's score for a
topic mixes two cosine similarities:

* ``centroid``: similarity to the normalised sum of the mean example embedding and the description embedding;
* ``nearest``: similarity to the closest single text (description or example) of the topic.

``score = centroid_weight * centroid + (1 - centroid_weight) * nearest``. With ``background`` (embeddings of
unlabelled comments) the centroids are first adapted to it (``adapt_prototypes``): each is pulled towards the
mean of the comments it claims. A topic is predicted when its score
reaches the topic's threshold and lies within ``max_gap`` of the comment's best score (this keeps weak
secondary topics out of multi-label answers). Pure numpy: no database, no model; the embedding function is
passed in, so tests use a fake one.

Measured on Banking77 (77 topics named from the category ids, no description or examples, frozen MiniLM,
top topic per text, macro-F1): names alone 0.612 on test; with the 10,003 train texts (labels unused) as
background (``adapt_weight=5``, 3 iterations, ``centroid_weight=1``) 0.709. Picked on train rows held out
from a 7,000-row background (train labels only): plain 0.608; weight 1/3/5/8 with 3 iterations 0.671 /
0.683 / 0.689 / 0.688; centroid_weight 0.3/0.7/1.0 0.646 / 0.673 / 0.680 (weight 3). Prompt templates
("I have a question about {name}", averages of several) gave +0.000 to +0.006, centring on the background
mean +0.002, whitening -5 to -14 points: not kept. The test texts are never part of the background.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np

from nlp_service.topics.taxonomy import Taxonomy
from nlp_service.topics.vectors import normalise

log = logging.getLogger(__name__)

Embed = Callable[[list[str]], np.ndarray]

CENTROID_WEIGHT = 0.3
MAX_GAP = 0.25
ADAPT_WEIGHT = 5.0
"""Weight of the claimed comments' mean against the original prototype in each adaptation round."""
ADAPT_ITERATIONS = 3
PROTOTYPES_FORMAT = 1


class StalePrototypesError(ValueError):
    """A prototypes file was computed with another encoder or another version of the taxonomy."""


@dataclass(frozen=True)
class TopicHit:
    """One predicted topic for one comment."""

    id: str
    name: str
    score: float


def prototypes_path(taxonomy_path: str | Path) -> Path:
    """Where the prototypes of a taxonomy file are cached: ``<stem>.prototypes.npz`` beside it."""
    path = Path(taxonomy_path)
    return path.with_name(f"{path.stem}.prototypes.npz")


class ScorerOptions(TypedDict, total=False):
    """``TopicScorer``'s keyword options, passed through by its constructors."""

    centroid_weight: float
    max_gap: float | None
    background: np.ndarray | None
    adapt_weight: float
    adapt_iterations: int


class TopicScorer:
    """Scores embeddings against a taxonomy's topics; columns follow the taxonomy's topic order."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        text_embeddings: np.ndarray,
        *,
        centroid_weight: float = CENTROID_WEIGHT,
        max_gap: float | None = MAX_GAP,
        background: np.ndarray | None = None,
        adapt_weight: float = ADAPT_WEIGHT,
        adapt_iterations: int = ADAPT_ITERATIONS,
    ) -> None:
        """``text_embeddings`` holds one row per text of ``Topic.texts()``, topic after topic.

        ``background``: optional ``(n, dim)`` embeddings of unlabelled comments (say, the stored ones) to
        adapt the centroids to; only the adapted centroids are kept. Adaptation shifts the score scale, so
        thresholds tuned without it do not carry over; with it ``centroid_weight=1.0`` scored best (argmax).
        """
        counts = [len(t.texts()) for t in taxonomy.topics]
        vectors = np.asarray(text_embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != sum(counts):
            raise ValueError(f"expected ({sum(counts)}, dim) text embeddings, got shape {vectors.shape}")
        if not 0.0 <= centroid_weight <= 1.0:
            raise ValueError(f"centroid_weight must be in [0, 1], got {centroid_weight}")
        self.taxonomy = taxonomy
        self.centroid_weight = float(centroid_weight)
        self.max_gap = max_gap
        self.text_embeddings = normalise(vectors)
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        centroids = []
        for start, count in zip(self._starts, counts, strict=True):
            description = self.text_embeddings[start]
            examples = self.text_embeddings[start + 1 : start + count]
            centroid = description if len(examples) == 0 else examples.mean(axis=0) + description
            centroids.append(centroid)
        self.centroids = normalise(np.stack(centroids)).astype(np.float32)
        if background is not None and len(background):
            self.centroids = adapt_prototypes(
                self.centroids, background, weight=adapt_weight, iterations=adapt_iterations
            )
        self.thresholds = np.asarray(taxonomy.thresholds(), dtype=np.float32)

    @classmethod
    def from_taxonomy(cls, taxonomy: Taxonomy, embed: Embed, **kwargs: Unpack[ScorerOptions]) -> TopicScorer:
        """Embed every description and example once and build the scorer."""
        texts = [text for topic in taxonomy.topics for text in topic.texts()]
        return cls(taxonomy, np.asarray(embed(texts)), **kwargs)

    @property
    def ids(self) -> list[str]:
        return self.taxonomy.ids

    @property
    def dim(self) -> int:
        return int(self.text_embeddings.shape[1])

    def with_taxonomy(self, taxonomy: Taxonomy) -> TopicScorer:
        """The same prototypes with another taxonomy's thresholds (its texts must be unchanged)."""
        if taxonomy.fingerprint() != self.taxonomy.fingerprint():
            raise StalePrototypesError("the taxonomy's topics or examples differ; rebuild the prototypes")
        scorer = TopicScorer(
            taxonomy, self.text_embeddings, centroid_weight=self.centroid_weight, max_gap=self.max_gap
        )
        scorer.centroids = self.centroids  # keeps an adaptation to a background
        return scorer

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, n_topics) similarity scores for (n, dim) embeddings."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected (n, {self.dim}) embeddings, got shape {x.shape}")
        if len(x) == 0:
            return np.zeros((0, len(self.ids)), dtype=np.float32)
        x = normalise(x)
        nearest = np.maximum.reduceat(x @ self.text_embeddings.T, self._starts, axis=1)
        centroid = x @ self.centroids.T
        return self.centroid_weight * centroid + (1.0 - self.centroid_weight) * nearest

    def gate(self, scores: np.ndarray) -> np.ndarray:
        """Scores with every topic more than ``max_gap`` below its row's best set to -inf."""
        if self.max_gap is None or len(scores) == 0:
            return scores
        best = scores.max(axis=1, keepdims=True)
        return np.where(scores >= best - self.max_gap, scores, -np.inf)

    def predict(self, embeddings: np.ndarray) -> list[list[TopicHit]]:
        """Multi-label topics per row, best first; a row may get none. Rows keep the input order."""
        scores = self.score(embeddings)
        keep = self.gate(scores) >= self.thresholds
        out: list[list[TopicHit]] = []
        topics = self.taxonomy.topics
        for row, mask in zip(scores, keep, strict=True):
            picked = sorted(np.flatnonzero(mask), key=lambda j: -row[j])
            out.append([TopicHit(topics[j].id, topics[j].name, round(float(row[j]), 4)) for j in picked])
        return out

    def save(self, path: str | Path, *, encoder_sha256: str) -> None:
        """Write the prototype embeddings with the encoder hash and taxonomy fingerprint (atomic)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    text_embeddings=self.text_embeddings,
                    encoder_sha256=np.array(encoder_sha256),
                    taxonomy_fingerprint=np.array(self.taxonomy.fingerprint()),
                    topic_ids=np.array(self.ids),
                    format=np.array(PROTOTYPES_FORMAT),
                )
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; the artifact is meant to be shared
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(
        cls, path: str | Path, taxonomy: Taxonomy, *, encoder_sha256: str, **kwargs: Unpack[ScorerOptions]
    ) -> TopicScorer:
        """Read saved prototypes; ``StalePrototypesError`` if the encoder or the taxonomy texts changed."""
        with np.load(Path(path), allow_pickle=False) as data:
            version, saved_hash = int(data["format"]), str(data["encoder_sha256"])
            if version != PROTOTYPES_FORMAT:
                raise StalePrototypesError(f"{path}: prototypes format {version} is not supported")
            if saved_hash != encoder_sha256:
                raise StalePrototypesError(f"{path}: computed with another encoder ({saved_hash[:12]})")
            if str(data["taxonomy_fingerprint"]) != taxonomy.fingerprint():
                raise StalePrototypesError(f"{path}: computed for another version of the taxonomy")
            vectors = data["text_embeddings"]
        return cls(taxonomy, vectors, **kwargs)

    @classmethod
    def load_or_build(
        cls,
        taxonomy: Taxonomy,
        embed: Embed,
        path: str | Path,
        *,
        encoder_sha256: str,
        **kwargs: Unpack[ScorerOptions],
    ) -> TopicScorer:
        """Load cached prototypes if they match the encoder and taxonomy; else re-embed and try to cache."""
        path = Path(path)
        if path.is_file():
            try:
                return cls.load(path, taxonomy, encoder_sha256=encoder_sha256, **kwargs)
            except (StalePrototypesError, OSError, KeyError, ValueError) as exc:
                log.info("re-embedding topic prototypes: %s", exc)
        scorer = cls.from_taxonomy(taxonomy, embed, **kwargs)
        try:
            scorer.save(path, encoder_sha256=encoder_sha256)
        except OSError as exc:  # a read-only models folder must not stop the service
            log.warning("could not cache topic prototypes at %s: %s", path, exc)
        return scorer


def adapt_prototypes(
    prototypes: np.ndarray,
    unlabelled: np.ndarray,
    *,
    weight: float = ADAPT_WEIGHT,
    iterations: int = ADAPT_ITERATIONS,
) -> np.ndarray:
    """Prototypes pulled towards the unlabelled texts they claim (no labels; ``(k, dim)`` unit rows).

    Each round assigns every text to its nearest current prototype, then moves each prototype to
    ``normalise(original + weight * mean(its texts))``; the original prototype stays as an anchor, so a
    prototype that claims nothing keeps its place.
    """
    if iterations < 0 or weight < 0:
        raise ValueError("weight and iterations must not be negative")
    anchor = normalise(np.asarray(prototypes, dtype=np.float32))
    x = normalise(np.asarray(unlabelled, dtype=np.float32))
    current = anchor
    for _ in range(iterations):
        nearest = (x @ current.T).argmax(axis=1)
        counts = np.bincount(nearest, minlength=len(anchor)).astype(np.float32)
        sums = np.zeros_like(anchor)
        np.add.at(sums, nearest, x)
        means = sums / np.maximum(counts, 1.0)[:, None]
        current = normalise(anchor + weight * means)
    return current.astype(np.float32)


def micro_f1(predicted: np.ndarray, gold: np.ndarray) -> float:
    """Micro-averaged F1 of two boolean (n, k) matrices (1.0 when both are empty)."""
    tp = int(np.sum(predicted & gold))
    wrong = int(np.sum(predicted ^ gold))
    return 1.0 if tp + wrong == 0 else 2 * tp / (2 * tp + wrong)


def tune_thresholds(
    scores: np.ndarray,
    gold: np.ndarray,
    *,
    grid: Sequence[float] | None = None,
    shrink: float = 0.5,
) -> tuple[np.ndarray, float]:
    """Per-topic thresholds maximising F1 on labelled (gated) scores, shrunk towards one global threshold.

    The global threshold maximises micro-F1 over all topics; each topic's own best threshold (ties broken
    towards the global one) is blended with it: ``shrink * global + (1 - shrink) * own``. Topics without
    positives get the global threshold. Returns (thresholds, global threshold).
    """
    candidates = np.round(np.arange(0.15, 0.85, 0.01), 4) if grid is None else np.asarray(grid, dtype=float)
    gold = np.asarray(gold, dtype=bool)
    overall = max(candidates, key=lambda t: micro_f1(scores >= t, gold))
    out = np.full(scores.shape[1], overall, dtype=float)
    for j in range(scores.shape[1]):
        if not gold[:, j].any():
            continue
        own = max(candidates, key=lambda t: (micro_f1(scores[:, j] >= t, gold[:, j]), -abs(t - overall)))
        out[j] = shrink * overall + (1.0 - shrink) * own
    return out, float(overall)
