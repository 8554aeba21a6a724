"""The analysis engine: one encoder pass per text, every head applied to that one result.

The engine holds the encoder and an immutable :class:`ModelSet` (heads + topic scorer + versions). A reload
builds a new model set and swaps the reference, so a batch always runs on one consistent set of models and
requests in flight are never dropped.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from nlp_service.inference.encoder import Encoded, Encoder, EncoderInfo
from nlp_service.inference.results import Decoded, decode
from nlp_service.inference.spacy_pipeline import load_spacy, transient_docs

if TYPE_CHECKING:
    from nlp_service.config import Settings

log = logging.getLogger(__name__)

HEAD_TASKS = ("sentiment", "emotion", "intensity", "valence")
INTENSITY_EMOTIONS = ("anger", "fear", "joy", "sadness")


@dataclass(frozen=True)
class ModelSet:
    """Heads and topic scorer that were loaded together, with the versions that identify them."""

    heads: dict[str, Any]
    topics: Any
    versions: dict[str, str]


@dataclass
class Analysis:
    """Everything the engine predicts for one text: the heads' raw arrays and, decoded from them once on
    first use, the typed result (:attr:`decoded`) that classify and ingest consume."""

    embedding: np.ndarray
    truncated: bool
    tokens: int
    outputs: dict[str, np.ndarray]
    topics: list[Any]
    models: ModelSet = field(repr=False)
    # (s, dim) sentence embeddings of a comment of 2+ sentences (``NLP_TOPIC_SENTENCES``), else None
    sentences: np.ndarray | None = field(default=None, repr=False)
    # (layers, dim) pooled hidden states the heads read (``Engine.feature_layers``), stored for re-scoring
    features: np.ndarray | None = field(default=None, repr=False)
    feature_spec: str | None = None  # "<encoder sha256>:<layers>" of ``features``

    @cached_property
    def decoded(self) -> Decoded:
        """Sentiment, emotions (thresholds applied), intensity, valence and topics, by the one decode path."""
        return decode(self.models.heads, self.outputs, self.topics)


def encoder_version(info: EncoderInfo) -> str:
    """``all-MiniLM-L6-v2@<sha>``, ``all-MiniLM-L6-v2@<base sha>+lora-v1@<adapter sha>``, ``+int8`` if so."""
    int8 = "+int8" if info.quantized else ""
    if info.adapter is not None:
        return f"all-MiniLM-L6-v2@{(info.base_sha256 or '')[:12]}+lora-{info.adapter}{int8}"
    name = info.name.rstrip("/").split("/")[-1]
    if name == "model":  # a packaged folder: name it by its weights
        name = "all-MiniLM-L6-v2"
    return f"{name}@{info.sha256[:12]}{int8}"


def feature_layers(heads: Mapping[str, Any]) -> tuple[int, ...]:
    """The pooled layers any of ``heads`` reads (sorted): what a comment stores for re-scoring."""
    found: set[int] = set()
    for head in heads.values():
        features = getattr(head, "features", None)
        found.update(getattr(features, "layers", ()))
    return tuple(sorted(found))


def feature_spec(encoder_sha256: str, layers: tuple[int, ...]) -> str:
    return f"{encoder_sha256}:{','.join(map(str, layers))}"


def parse_feature_spec(spec: str) -> tuple[str, tuple[int, ...]]:
    """(encoder sha256, layers) of a stored feature spec."""
    sha, _, layers = spec.partition(":")
    return sha, tuple(int(i) for i in layers.split(",") if i)


class Engine:
    """Encoder + heads + zero-shot topics + spaCy sentences, loaded once at start-up."""

    def __init__(self, settings: Settings, *, encoder: Encoder | None = None) -> None:
        self.settings = settings
        # The heads' matmuls are tiny: threaded BLAS only adds synchronisation (12 ms -> 0.2 ms on 1 thread).
        threadpool_limits(settings.blas_threads, user_api="blas")
        self.encoder = encoder or Encoder(
            settings.encoder,
            max_seq_length=settings.max_seq_length,
            threads=settings.torch_threads,
            quantize=settings.quantize,
            batch_size=settings.max_batch_size,
            max_tokens=settings.max_batch_tokens,
            overhead_tokens=settings.batch_overhead_tokens,
            runtime=settings.encoder_runtime,
        )
        self._reload_lock = threading.Lock()
        self._topics_override: tuple[Any, str] | None = None  # a taxonomy version from the database
        self.models = self.load_models()

    # -- models ---------------------------------------------------------------------------------------
    def load_models(self) -> ModelSet:
        """Load the active version of every head and the topic scorer, refusing heads of another encoder."""
        from nlp_service.inference.registry import ModelRegistry
        from nlp_service.topics.model import TopicModel
        from nlp_service.topics.scorer import TopicScorer, prototypes_path
        from nlp_service.topics.taxonomy import load_taxonomy

        registry = ModelRegistry(self.settings.models_dir)
        heads = {task: registry.load_active(task, self.encoder.info) for task in HEAD_TASKS}
        taxonomy_path = self.settings.resolved_taxonomy_path()
        taxonomy = load_taxonomy(taxonomy_path)
        encoder_key = self.topic_model_key
        prototypes = TopicScorer.load_or_build(
            taxonomy, self.embed, prototypes_path(taxonomy_path), encoder_sha256=encoder_key
        )
        topics = TopicModel(prototypes, {}, key=encoder_key)
        versions = {"encoder": encoder_version(self.encoder.info)}
        versions.update({task: head.version for task, head in heads.items()})
        file_hash = hashlib.sha256(taxonomy_path.read_bytes()).hexdigest()
        versions["topics"] = f"{taxonomy_path.stem}@{file_hash[:12]}"
        if self._topics_override is not None:
            topics, versions["topics"] = self._topics_override
        return ModelSet(heads=heads, topics=topics, versions=versions)

    @property
    def topic_model_key(self) -> str:
        """What a topic model's embeddings depend on: the encoder's weights (and whether it is int8)."""
        return self.encoder.info.sha256 + ("-int8" if self.encoder.info.quantized else "")

    def set_topics(self, topics: Any, version: str) -> None:
        """Swap in another taxonomy version's topic model (the heads stay as they are)."""
        with self._reload_lock:
            self._topics_override = (topics, version)
            current = self.models
            versions = {**current.versions, "topics": version}
            self.models = ModelSet(heads=current.heads, topics=topics, versions=versions)

    def reload(self) -> ModelSet:
        """Build a fresh model set from the registry and swap it in atomically."""
        with self._reload_lock:
            models = self.load_models()
            self.models = models
            log.info("models reloaded: %s", models.versions)
            return models

    # -- inference ------------------------------------------------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray:
        """Search embeddings only (L2-normalised)."""
        return self.encoder.encode(texts).embedding

    def analyze_encoded(self, encoded: Encoded, models: ModelSet | None = None) -> list[Analysis]:
        """Apply every head and the topic scorer to an encoder result (sentence-aware topics where it
        carries sentence embeddings)."""
        models = models or self.models
        outputs = {task: head.predict(encoded) for task, head in models.heads.items()}
        layers = feature_layers(models.heads) if self.settings.store_head_features else ()
        spec = feature_spec(self.encoder.info.sha256, layers) if layers else None
        sentences = encoded.sentences
        if sentences is None:
            topic_hits = models.topics.predict(encoded.embedding)
        else:
            topic_hits = models.topics.predict(encoded.embedding, sentences=sentences)
        return [
            Analysis(
                embedding=encoded.embedding[i],
                truncated=encoded.truncated[i],
                tokens=encoded.token_counts[i],
                outputs={task: values[i] for task, values in outputs.items()},
                topics=topic_hits[i],
                models=models,
                sentences=None if sentences is None else sentences[i],
                features=encoded.layers[i, list(layers)] if layers else None,
                feature_spec=spec,
            )
            for i in range(len(encoded))
        ]

    def analyze(self, texts: list[str]) -> list[Analysis]:
        """One encoder pass over ``texts``; results in input order."""
        models = self.models  # one consistent model set for the whole batch
        encoded = self.encoder.encode(texts, sentences=self.settings.topic_sentences)
        return self.analyze_encoded(encoded, models)

    def warm_up(self) -> None:
        """Check the encoder's runtime and run every path once, so the first request pays no start-up cost."""
        self.encoder.warm_up()
        self.analyze(["warm-up comment: the delivery was late.", "great support, thanks!"])
        self.sentences(["First sentence. Second one."])

    # -- spaCy ----------------------------------------------------------------------------------------
    @property
    def nlp(self) -> Any:
        """spaCy with the parser (its sentence boundaries), without NER."""
        return load_spacy(self.settings.spacy_model, exclude=("ner",))

    def sentences(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        """Sentence spans (start, end, text) per text, from spaCy's parser-based segmentation."""
        return transient_docs(self.nlp, texts, _sentence_spans, disable=("lemmatizer",))


def _sentence_spans(doc: Any) -> list[tuple[int, int, str]]:
    return [(s.start_char, s.end_char, s.text) for s in doc.sents if s.text.strip()]
