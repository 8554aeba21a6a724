"""The one taxonomy provider: which taxonomy (and topic labels) readers use.

Views depend on :data:`TaxonomyDep` / :data:`TopicLabelsDep`; jobs call :func:`current_taxonomy` /
:func:`topic_labels` with their settings (no engine: the configured taxonomy file).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from nlp_service.config import Settings
from nlp_service.deps import LoadedEngineDep, SettingsDep
from nlp_service.inference.protocol import AnalysisEngine
from nlp_service.topics.taxonomy import Taxonomy, load_taxonomy


def current_taxonomy(settings: Settings, engine: AnalysisEngine | None = None) -> Taxonomy:
    """The taxonomy the loaded topic scorer uses, else the configured taxonomy file."""
    taxonomy = getattr(engine.models.topics, "taxonomy", None) if engine is not None else None
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    return load_taxonomy(settings.resolved_taxonomy_path())


def topic_labels(settings: Settings, engine: AnalysisEngine | None = None) -> dict[str, str]:
    """Topic id -> display name from the taxonomy in use (empty if it cannot be read: labels are cosmetic)."""
    try:
        return {t.id: t.name for t in current_taxonomy(settings, engine).topics}
    except Exception:  # a missing taxonomy file must not break alerts
        return {}


def _taxonomy(settings: SettingsDep, engine: LoadedEngineDep) -> Taxonomy:
    return current_taxonomy(settings, engine)


def _labels(settings: SettingsDep, engine: LoadedEngineDep) -> dict[str, str]:
    return topic_labels(settings, engine)


TaxonomyDep = Annotated[Taxonomy, Depends(_taxonomy)]
TopicLabelsDep = Annotated[dict[str, str], Depends(_labels)]
