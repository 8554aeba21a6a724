"""The one taxonomy provider: which taxonomy (and topic labels) readers use.

Views depend on :data:`TaxonomyDep` / :data:`TopicLabelsDep`; jobs call :func:`current_taxonomy` /
:func:`topic_labels` with their settings (no engine: the configured taxonomy file).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session, sessionmaker

from nlp_service.config import Settings
from nlp_service.deps import LoadedEngineDep, SettingsDep
from nlp_service.inference.protocol import AnalysisEngine
from nlp_service.topics.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)


def current_taxonomy(settings: Settings, engine: AnalysisEngine | None = None) -> Taxonomy:
    """The taxonomy the loaded topic scorer uses, else the configured taxonomy file."""
    taxonomy = getattr(engine.models.topics, "taxonomy", None) if engine is not None else None
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    return load_taxonomy(settings.resolved_taxonomy_path())


def active_labels(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, str]:
    """Topic id -> display name from the active taxonomy version in the database (else the configured file):
    for processes without an engine, such as the standalone worker."""
    from nlp_service.db import session_scope
    from nlp_service.topics import versions

    try:
        with session_scope(sessions) as s:
            state = versions.state(db_session=s)
            if state is not None:
                row = versions.get(db_session=s, version_id=state.version_id)
                return {t.id: t.name for t in versions.taxonomy_of(row).topics}
    except Exception:  # labels are cosmetic: fall back to the file
        log.warning("could not read the active taxonomy's labels; using the taxonomy file", exc_info=True)
    return topic_labels(settings)


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
