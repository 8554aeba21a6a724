"""The one taxonomy provider: which taxonomy (and topic labels) readers use.

Views depend on :data:`TaxonomyDep` / :data:`TopicLabelsDep`; jobs call :func:`current_taxonomy` /
:func:`topic_labels` with their settings (no engine: the configured taxonomy file).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from nlp_service.config import Settings
from nlp_service.deps import StateDep
from nlp_service.topics.taxonomy import Taxonomy, load_taxonomy


def current_taxonomy(settings: Settings, engine: Any = None) -> Taxonomy:
    """The taxonomy the loaded topic scorer uses, else the configured taxonomy file."""
    scorer = getattr(getattr(engine, "models", None), "topics", None)
    taxonomy = getattr(scorer, "taxonomy", None)
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    return load_taxonomy(settings.resolved_taxonomy_path())


def topic_labels(settings: Settings, engine: Any = None) -> dict[str, str]:
    """Topic id -> display name from the taxonomy in use (empty if it cannot be read: labels are cosmetic)."""
    try:
        return {t.id: t.name for t in current_taxonomy(settings, engine).topics}
    except Exception:  # a missing taxonomy file must not break alerts
        return {}


def _taxonomy(state: StateDep) -> Taxonomy:
    return current_taxonomy(state.settings, state.engine)


def _labels(state: StateDep) -> dict[str, str]:
    return topic_labels(state.settings, state.engine)


TaxonomyDep = Annotated[Taxonomy, Depends(_taxonomy)]
TopicLabelsDep = Annotated[dict[str, str], Depends(_labels)]
