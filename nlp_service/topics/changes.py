"""A taxonomy change, top-down: read the head -> edit (pure) -> build the model (no transaction held) ->
store the new version if the head did not move -> optionally activate it (queues the re-tag).

Also the taxonomy half of start-up and of every replica's refresh: seed version 1 from the shipped file, and
serve the active version's model (:func:`sync_active`, polled by :func:`watch_taxonomy`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from nlp_service.comments.embeddings import newest_embeddings
from nlp_service.db import session_scope
from nlp_service.deps import in_transaction
from nlp_service.errors import NotReady
from nlp_service.inference.protocol import AnalysisEngine
from nlp_service.topics import versions
from nlp_service.topics.model import TopicModel
from nlp_service.topics.tables import RetagJob, TaxonomyVersion
from nlp_service.topics.taxonomy import Taxonomy

log = logging.getLogger(__name__)

Edit = Callable[[Taxonomy, Session], Taxonomy]
"""Computes the new taxonomy from the head's (may read the database, e.g. comments named as examples)."""


@runtime_checkable
class TopicsEngine(Protocol):
    """An engine whose topic model can be swapped for a taxonomy version's (the real engine)."""

    @property
    def topic_model_key(self) -> str: ...

    def set_topics(self, topics: Any, version: str) -> None: ...


def model_key(engine: AnalysisEngine) -> str:
    return engine.topic_model_key if isinstance(engine, TopicsEngine) else engine.encoder.info.sha256


BACKGROUND_SAMPLE = 5000
"""Newest stored comments a build reads as unlabelled background (bounds training time and memory)."""


def builder(engine: AnalysisEngine, background: np.ndarray | None = None) -> versions.Builder:
    """Builds topic models with the served encoder (and the stored comments' ``background``)."""
    key = model_key(engine)
    return lambda taxonomy: TopicModel.build(taxonomy, engine.embed, key=key, background=background)


@dataclass
class ChangeResult:
    version: TaxonomyVersion
    active_id: int | None
    job: RetagJob | None


async def apply_change(
    sessions: sessionmaker[Session],
    engine: AnalysisEngine,
    edit: Edit,
    *,
    change: str,
    actor: str | None,
    activate: bool,
    also: Callable[[Session, TaxonomyVersion], None] | None = None,
) -> ChangeResult:
    """Make one change as a new version (and activate it if asked); ``also`` writes what goes with it in the
    same transaction. Nothing is stored if any step fails."""

    def read(s: Session) -> tuple[int, Taxonomy, np.ndarray]:
        head = versions.head(db_session=s)
        if head is None:
            raise NotReady("no taxonomy version yet: the service is still starting")
        taxonomy = edit(versions.taxonomy_of(head), s)
        _, background = newest_embeddings(db_session=s, at_most=2**62, limit=BACKGROUND_SAMPLE)
        return head.id, taxonomy, background

    base_id, taxonomy, background = await in_transaction(sessions, read)
    model = await run_in_threadpool(builder(engine, background), taxonomy)

    def write(s: Session) -> ChangeResult:
        version = versions.commit_change(
            db_session=s, base_id=base_id, model=model, change=change, actor=actor
        )
        job = versions.activate(db_session=s, version_id=version.id) if activate else None
        if also is not None:
            also(s, version)
        return ChangeResult(version, versions.active_id(db_session=s), job)

    return await in_transaction(sessions, write)


# -- serving the active version -------------------------------------------------------------------------
def sync_active(sessions: sessionmaker[Session], engine: AnalysisEngine) -> int | None:
    """Seed version 1 if there is none, then serve the active version's model if the engine does not yet.
    Returns the active version id."""
    with session_scope(sessions) as s:
        seeded = versions.head(db_session=s) is not None
    if not seeded:
        seed_model = engine.models.topics
        if not isinstance(seed_model, TopicModel):
            seed_model = builder(engine)(seed_model.taxonomy)
        _seed(sessions, seed_model)
    with session_scope(sessions) as s:
        active = versions.state(db_session=s)
        if active is None or not isinstance(engine, TopicsEngine):
            return None if active is None else active.version_id
        label = f"taxonomy@v{active.version_id}"
        current = engine.models.topics
        if (
            getattr(current, "version", None) == active.version_id
            and engine.models.versions["topics"] == label
        ):
            return active.version_id
        row = versions.get(db_session=s, version_id=active.version_id)
    if isinstance(current, TopicModel) and current.version == active.version_id:
        model = current  # the seed: the model already served
    else:
        model = versions.model_of(row, key=engine.topic_model_key, build=builder(engine))
    engine.set_topics(model, label)
    log.info("serving taxonomy version %s", active.version_id)
    return active.version_id


def _seed(sessions: sessionmaker[Session], model: TopicModel, attempts: int = 5) -> None:
    """Store version 1 in a short transaction of its own; another replica seeding first is fine."""
    for attempt in range(attempts):
        try:
            with session_scope(sessions) as s:
                versions.seed(db_session=s, model=model)
            return
        except IntegrityError:  # another replica seeded first
            return
        except OperationalError:  # SQLite: a writer committed since this transaction's snapshot
            if attempt + 1 == attempts:
                raise
            time.sleep(0.2 * (attempt + 1))


async def watch_taxonomy(sessions: sessionmaker[Session], engine: AnalysisEngine, interval_s: float) -> None:
    """Poll the active version every ``interval_s`` and serve a newly activated one (no restart)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(sync_active, sessions, engine)
        except Exception:  # keep serving the current version; try again next time
            log.exception("could not refresh the active taxonomy version")
