"""Zero-shot topics: a taxonomy file, prototype embeddings and multi-label scoring (pure code, no DB)."""

from nlp_service.topics.scorer import (
    Embed,
    StalePrototypesError,
    TopicHit,
    TopicScorer,
    micro_f1,
    prototypes_path,
    tune_thresholds,
)
from nlp_service.topics.taxonomy import (
    Taxonomy,
    TaxonomyError,
    Topic,
    load_taxonomy,
    parse_taxonomy,
    save_taxonomy,
)

__all__ = [
    "Embed",
    "StalePrototypesError",
    "Taxonomy",
    "TaxonomyError",
    "Topic",
    "TopicHit",
    "TopicScorer",
    "load_taxonomy",
    "micro_f1",
    "parse_taxonomy",
    "prototypes_path",
    "save_taxonomy",
    "tune_thresholds",
]
