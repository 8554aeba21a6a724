"""The topic model of one taxonomy version: zero-shot prototypes, learned scorers and search-defined topics.

* A topic with at least :data:`MIN_TAUGHT` taught positives gets a learned scorer (``fewshot.train_topic``:
  its positives and example phrases against its negatives and every other topic's texts); its threshold and
  precision/recall come from cross-validation. Its hit score is the scorer's probability.
* A topic defined by a search ``query`` scores the cosine similarity to the query text (and its example
  phrases); its filters are applied where the comment's fields are known (:meth:`TopicModel.keep`).
* Every other topic is zero-shot (``TopicScorer``: description + example phrases, gated by ``max_gap``).

Sentence-aware: given each comment's sentence embeddings, a comment gets every topic one of its sentences
(or the whole comment) carries, with the best score. A sub-topic's hit also tags its parent.
Pure numpy (plus sklearn for training): no database, the embedding function is passed in.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nlp_service.topics.fewshot import FewShotTopic, LinearScorer, train_topic
from nlp_service.topics.scorer import Embed, StalePrototypesError, TopicHit, TopicScorer
from nlp_service.topics.spreading import SpreadTopic, spread_labels
from nlp_service.topics.taxonomy import Taxonomy

MIN_TAUGHT = 5
"""Taught positive examples a topic needs before it gets a learned scorer (fewer: it stays zero-shot)."""
MODEL_FORMAT = 3
ZERO_SHOT, LEARNED, QUERY = "zero_shot", "learned", "query"

SentenceEmbeddings = Sequence[np.ndarray | None] | None
"""Per comment: its sentences' embeddings ``(s, dim)``, or None (one sentence: the comment itself)."""


@dataclass(frozen=True)
class TopicQuality:
    """How a topic is scored, and for a learned one its cross-validated precision and recall."""

    method: str
    cv_precision: float | None = None
    cv_recall: float | None = None
    n_positive: int = 0
    n_negative: int = 0
    threshold: float | None = None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -30, 30))), dtype=np.float32)


class TopicModel:
    """Scores embeddings against one taxonomy version; columns follow the taxonomy's topic order."""

    def __init__(
        self,
        prototypes: TopicScorer,
        learned: Mapping[str, FewShotTopic],
        *,
        version: int | None = None,
        key: str = "",
    ) -> None:
        self.prototypes = prototypes
        self.taxonomy: Taxonomy = prototypes.taxonomy
        self.version = version
        self.key = key
        self.learned = dict(learned)
        topics = self.taxonomy.topics
        self.methods = [
            LEARNED if t.id in self.learned else QUERY if t.query is not None else ZERO_SHOT for t in topics
        ]
        self._learned_cols = [j for j, m in enumerate(self.methods) if m == LEARNED]
        self._zero_shot = np.array([m == ZERO_SHOT for m in self.methods])
        if self._learned_cols:
            scorers = [self.learned[topics[j].id] for j in self._learned_cols]
            self._weights = np.stack([s.scorer.weights for s in scorers], axis=1).astype(np.float32)
            self._bias = np.array([s.scorer.bias for s in scorers], dtype=np.float32)
            self._learned_thresholds = np.array([s.threshold for s in scorers], dtype=np.float32)
        self._parent = [self.taxonomy.ids.index(t.parent) if t.parent else -1 for t in topics]
        self._by_id = {t.id: t for t in topics}

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        taxonomy: Taxonomy,
        embed: Embed,
        *,
        version: int | None = None,
        key: str = "",
        seed: int = 0,
        background: np.ndarray | None = None,
    ) -> TopicModel:
        """Embed every text once, build the prototypes and train the topics taught enough examples.

        ``background``: embeddings of stored comments (unlabelled, a bounded sample). Learned topics borrow
        their examples' nearest neighbours from it, take their zero-shot prototype as a prior and the rows
        that label spreading of all taught topics' examples and priors assigns (``fewshot.train_topic``);
        with ``taxonomy.adapt_to_comments`` the zero-shot centroids are adapted to it (then scored by the
        centroid alone, as measured on Banking77)."""
        texts = list(
            dict.fromkeys(x for t in taxonomy.topics for x in (*t.texts(), *t.positives, *t.negatives))
        )
        vectors = np.asarray(embed(texts), dtype=np.float32) if texts else np.zeros((0, 0), np.float32)
        row = {text: i for i, text in enumerate(texts)}

        def rows(items: Sequence[str]) -> np.ndarray:
            return vectors[[row[x] for x in items]] if items else np.zeros((0, vectors.shape[1]), np.float32)

        text_rows = rows([x for t in taxonomy.topics for x in t.texts()])
        plain = TopicScorer(taxonomy, text_rows)
        background = None if background is None or not len(background) else np.asarray(background, np.float32)
        prototypes = plain
        if taxonomy.adapt_to_comments and background is not None:
            prototypes = TopicScorer(taxonomy, text_rows, centroid_weight=1.0, background=background)
        taught = [
            j for j, t in enumerate(taxonomy.topics) if t.query is None and len(t.positives) >= MIN_TAUGHT
        ]
        spreading, node = None, {}
        if background is not None and len(taught) >= 2:
            # Label spreading over the background: every taught topic's examples and its prior as nodes.
            node_texts = list(
                dict.fromkeys(
                    x for j in taught for x in (*taxonomy.topics[j].positives, *taxonomy.topics[j].examples)
                )
            )
            node = {text: i for i, text in enumerate(node_texts)}
            membership = np.zeros((len(node_texts) + len(taught), len(taxonomy.topics)))
            for i, j in enumerate(taught):
                for x in (*taxonomy.topics[j].positives, *taxonomy.topics[j].examples):
                    membership[node[x], j] = 1.0
                membership[len(node_texts) + i, j] = 1.0
            nodes = np.concatenate([rows(node_texts), plain.centroids[taught]])
            spreading = spread_labels(nodes, membership, background)
        parent = {t.id: t.parent for t in taxonomy.topics}
        learned: dict[str, FewShotTopic] = {}
        for j in taught:
            topic = taxonomy.topics[j]
            others = [x for t in taxonomy.topics if t.id not in (topic.id, topic.parent) for x in t.texts()]
            others += [
                x for t in taxonomy.topics if t.id != topic.id and t.parent != topic.id for x in t.positives
            ]
            positive_texts = list(dict.fromkeys((*topic.positives, *topic.examples)))
            negative_texts = list(dict.fromkeys((*topic.negatives, *others)))
            spread = None
            if spreading is not None:
                # a pseudo-label counts against this topic unless it is its parent or one of its sub-topics
                negative_topics = np.array(
                    [
                        t.id != topic.id and t.id != topic.parent and parent[t.id] != topic.id
                        for t in taxonomy.topics
                    ]
                )
                at = np.array([node.get(x, -1) for x in (*positive_texts, *negative_texts)], dtype=np.int64)
                spread = SpreadTopic(spreading, j, at, negative_topics)
            learned[topic.id] = train_topic(
                rows(positive_texts),
                rows(negative_texts),
                seed=seed,
                prior=plain.centroids[j],
                background=background,
                spread=spread,
            )
        return cls(prototypes, learned, version=version, key=key)

    # -- scoring ----------------------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return self.taxonomy.ids

    def quality(self) -> dict[str, TopicQuality]:
        """Per topic id: method, and for learned topics cross-validated precision/recall and threshold."""
        out: dict[str, TopicQuality] = {}
        for topic, method in zip(self.taxonomy.topics, self.methods, strict=True):
            s = self.learned.get(topic.id)
            out[topic.id] = (
                TopicQuality(
                    LEARNED,
                    round(s.cv_precision, 4),
                    round(s.cv_recall, 4),
                    s.n_positive,
                    s.n_negative,
                    round(float(_sigmoid(np.array(s.threshold))), 4),
                )
                if s is not None
                else TopicQuality(method, threshold=self.taxonomy.thresholds()[self.ids.index(topic.id)])
            )
        return out

    def _row_scores(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, passed) for (n, dim) embeddings: hit scores and whether each topic passes its bar."""
        scores = self.prototypes.score(x)
        gated = np.where(self._zero_shot, scores, -np.inf)
        if self.prototypes.max_gap is not None and len(scores) and self._zero_shot.any():
            best = gated.max(axis=1, keepdims=True)
            gated = np.where(gated >= best - self.prototypes.max_gap, gated, -np.inf)
        passed = np.where(self._zero_shot, gated, scores) >= self.prototypes.thresholds
        if self._learned_cols:
            norm = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            raw = norm @ self._weights + self._bias
            scores[:, self._learned_cols] = _sigmoid(raw)
            passed[:, self._learned_cols] = raw >= self._learned_thresholds
        return scores, passed

    def predict(self, embeddings: np.ndarray, sentences: SentenceEmbeddings = None) -> list[list[TopicHit]]:
        """Topics per comment, best first (a comment may get none); with ``sentences``, a comment gets each
        topic that it or one of its sentences carries."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or (len(x) and x.shape[1] != self.prototypes.dim):
            raise ValueError(f"expected (n, {self.prototypes.dim}) embeddings, got shape {x.shape}")
        scores, passed = self._row_scores(x) if len(x) else (np.zeros((0, len(self.ids))), None)
        scores = np.where(passed, scores, -np.inf) if passed is not None else scores
        if sentences is not None:
            groups = [(i, s) for i, s in enumerate(sentences) if s is not None and len(s)]
            if groups:
                stacked = np.concatenate([np.asarray(s, dtype=np.float32) for _, s in groups])
                s_scores, s_passed = self._row_scores(stacked)
                s_scores = np.where(s_passed, s_scores, -np.inf)
                start = 0
                for i, s in groups:
                    block = s_scores[start : start + len(s)]
                    scores[i] = np.maximum(scores[i], block.max(axis=0))
                    start += len(s)
        for j, parent in enumerate(self._parent):  # a sub-topic's hit tags its parent (two levels)
            if parent >= 0:
                scores[:, parent] = np.maximum(scores[:, parent], scores[:, j])
        # vectorised: per row, topics by descending score (ties: taxonomy order), the -inf ones left out
        order = np.argsort(-scores, axis=1, kind="stable")
        ranked = np.take_along_axis(scores, order, axis=1)
        n_hits = np.isfinite(ranked).sum(axis=1)
        values = ranked.tolist()
        ids, names = self.ids, [t.name for t in self.taxonomy.topics]
        return [
            [
                TopicHit(ids[j], names[j], round(values[i][k], 4))
                for k, j in enumerate(order[i, : n_hits[i]].tolist())
            ]
            for i in range(len(scores))
        ]

    def allows(self, topic_id: str, fields: Mapping[str, str | None]) -> bool:
        """False for a search-defined topic whose filters a comment's fields (source, touchpoint, region,
        sentiment) do not pass; True otherwise."""
        topic = self._by_id.get(topic_id)
        return topic is None or topic.query is None or topic.query.matches(dict(fields))

    def keep(self, hits: Sequence[TopicHit], fields: Mapping[str, str | None]) -> list[TopicHit]:
        """``hits`` without the search-defined topics whose filters this comment's fields do not pass."""
        return [h for h in hits if self.allows(h.id, fields)]

    # -- storage ----------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The model as an npz: prototype embeddings and learned scorers (the taxonomy is stored apart)."""
        ids = [self.ids[j] for j in self._learned_cols]
        meta = {
            i: {
                "method": s.method,
                "threshold": s.threshold,
                "cv_precision": s.cv_precision,
                "cv_recall": s.cv_recall,
                "n_positive": s.n_positive,
                "n_negative": s.n_negative,
            }
            for i, s in self.learned.items()
        }
        buf = io.BytesIO()
        np.savez(
            buf,
            format=np.array(MODEL_FORMAT),
            fingerprint=np.array(self.taxonomy.fingerprint()),
            text_embeddings=self.prototypes.text_embeddings,
            centroids=self.prototypes.centroids,
            centroid_weight=np.array(self.prototypes.centroid_weight),
            learned_ids=np.array(ids, dtype=str),
            learned_weights=self._weights.T if ids else np.zeros((0, self.prototypes.dim), np.float32),
            learned_bias=self._bias if ids else np.zeros(0, np.float32),
            learned_meta=np.array(json.dumps(meta)),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(
        cls, taxonomy: Taxonomy, blob: bytes, *, version: int | None = None, key: str = ""
    ) -> TopicModel:
        """Load :meth:`to_bytes`'s output for ``taxonomy``; ``StalePrototypesError`` if it does not match."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            if int(data["format"]) != MODEL_FORMAT:
                raise StalePrototypesError(f"topic model format {int(data['format'])} is not supported")
            if str(data["fingerprint"]) != taxonomy.fingerprint():
                raise StalePrototypesError("the topic model was built for other topic texts")
            prototypes = TopicScorer(
                taxonomy, data["text_embeddings"], centroid_weight=float(data["centroid_weight"])
            )
            prototypes.centroids = np.asarray(data["centroids"], dtype=np.float32)  # adapted ones, if so
            meta = json.loads(str(data["learned_meta"]))
            learned = {
                str(i): FewShotTopic(
                    method=meta[str(i)]["method"],
                    scorer=LinearScorer(weights=np.asarray(w, np.float64), bias=float(b)),
                    threshold=float(meta[str(i)]["threshold"]),
                    cv_precision=float(meta[str(i)]["cv_precision"]),
                    cv_recall=float(meta[str(i)]["cv_recall"]),
                    n_positive=int(meta[str(i)]["n_positive"]),
                    n_negative=int(meta[str(i)]["n_negative"]),
                )
                for i, w, b in zip(
                    data["learned_ids"], data["learned_weights"], data["learned_bias"], strict=True
                )
            }
        return cls(prototypes, learned, version=version, key=key)


ModelLoader = Callable[[Taxonomy], TopicModel]
