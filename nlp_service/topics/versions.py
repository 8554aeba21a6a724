"""Taxonomy versions: every change makes a new version; one version is active; activation queues a re-tag.

Edits build on the newest version (the head), not necessarily the active one; a version is served once it is
activated. A change is built (prototypes embedded, learned scorers trained) before its transaction, then
stored only if the head did not move meanwhile (else 409: retry). Takes the session keyword-only and never
commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nlp_service.errors import Conflict, InvalidInput, NotFound
from nlp_service.timestamps import utcnow
from nlp_service.topics.model import TopicModel
from nlp_service.topics.tables import RetagJob, TaxonomyState, TaxonomyVersion
from nlp_service.topics.taxonomy import Taxonomy, TaxonomyError, parse_taxonomy

ACTIVE = "active"
Builder = Callable[[Taxonomy], TopicModel]
"""Builds a taxonomy's topic model (embeds its texts with the served encoder, trains taught topics)."""


def taxonomy_of(version: TaxonomyVersion) -> Taxonomy:
    """The taxonomy a stored version holds (its ``version`` field is the version number)."""
    data = {**version.definition, "version": str(version.id)}
    return parse_taxonomy(data, source=f"taxonomy version {version.id}")


def model_of(version: TaxonomyVersion, *, key: str | None, build: Builder | None) -> TopicModel:
    """The version's stored model when it was built for ``key`` (None: any), else built by ``build``."""
    taxonomy = taxonomy_of(version)
    if version.model is not None and (key is None or version.model_key == key):
        return TopicModel.from_bytes(taxonomy, version.model, version=version.id, key=version.model_key or "")
    if build is None:
        raise RuntimeError(f"taxonomy version {version.id} has no model for this encoder")
    model = build(taxonomy)
    model.version = version.id
    return model


# -- reads ---------------------------------------------------------------------------------------------
def get(*, db_session: Session, version_id: int) -> TaxonomyVersion:
    version = db_session.get(TaxonomyVersion, version_id)
    if version is None:
        raise NotFound(
            f"taxonomy version {version_id} not found", detail=[{"field": "version", "message": "unknown"}]
        )
    return version


def get_all(*, db_session: Session, limit: int = 100) -> list[TaxonomyVersion]:
    """Newest first."""
    stmt = select(TaxonomyVersion).order_by(TaxonomyVersion.id.desc()).limit(limit)
    return list(db_session.scalars(stmt))


def head(*, db_session: Session) -> TaxonomyVersion | None:
    return db_session.scalars(select(TaxonomyVersion).order_by(TaxonomyVersion.id.desc()).limit(1)).first()


def state(*, db_session: Session) -> TaxonomyState | None:
    return db_session.get(TaxonomyState, ACTIVE)


def active_id(*, db_session: Session) -> int | None:
    row = state(db_session=db_session)
    return None if row is None else row.version_id


# -- writes --------------------------------------------------------------------------------------------
def lock(*, db_session: Session) -> None:
    """Serialise taxonomy writes: a no-op write on the state row first (PostgreSQL: a row lock; SQLite: the
    write lock, taken before this transaction reads, so its reads cannot go stale before it writes)."""
    db_session.execute(
        update(TaxonomyState)
        .where(TaxonomyState.name == ACTIVE)
        .values(name=ACTIVE)
        .execution_options(synchronize_session=False)
    )


def seed(*, db_session: Session, model: TopicModel, now: datetime | None = None) -> TaxonomyVersion | None:
    """Store the shipped taxonomy as version 1 and activate it, if no version exists yet (no re-tag: stored
    comments were tagged by that same taxonomy). Returns the new version, or None."""
    if head(db_session=db_session) is not None:
        return None
    version = _insert(
        db_session, model, change="seeded from the shipped taxonomy file", actor=None, parent=None
    )
    db_session.add(
        TaxonomyState(name=ACTIVE, version_id=version.id, previous_id=None, activated_at=now or utcnow())
    )
    db_session.flush()
    return version


def commit_change(
    *,
    db_session: Session,
    base_id: int | None,
    model: TopicModel,
    change: str,
    actor: str | None,
) -> TaxonomyVersion:
    """Store a built change as a new version, if the head is still ``base_id`` (else 409)."""
    lock(db_session=db_session)
    current = head(db_session=db_session)
    current_id = None if current is None else current.id
    if current_id != base_id:
        raise Conflict(
            f"the taxonomy changed meanwhile (version {current_id}, not {base_id}); retry the change",
            detail=[{"field": "version", "message": "stale"}],
        )
    return _insert(db_session, model, change=change, actor=actor, parent=base_id)


def _insert(
    db_session: Session, model: TopicModel, *, change: str, actor: str | None, parent: int | None
) -> TaxonomyVersion:
    definition = model.taxonomy.to_dict()
    definition.pop("version", None)
    version = TaxonomyVersion(
        parent_id=parent,
        definition=definition,
        change=change[:500],
        created_by=actor,
        created_at=utcnow(),
        quality={k: asdict(v) for k, v in model.quality().items()},
        model=model.to_bytes(),
        model_key=model.key or None,
    )
    db_session.add(version)
    db_session.flush()
    model.version = version.id
    return version


def activate(*, db_session: Session, version_id: int, now: datetime | None = None) -> RetagJob | None:
    """Make a version active and queue the re-tagging of stored comments (older re-tag jobs are
    superseded). Activating the active version changes nothing (None)."""
    lock(db_session=db_session)
    get(db_session=db_session, version_id=version_id)
    now = now or utcnow()
    row = db_session.get(TaxonomyState, ACTIVE, populate_existing=True)
    if row is not None and row.version_id == version_id:
        return None
    if row is None:
        db_session.add(TaxonomyState(name=ACTIVE, version_id=version_id, previous_id=None, activated_at=now))
    else:
        row.previous_id, row.version_id, row.activated_at = row.version_id, version_id, now
    db_session.execute(
        update(RetagJob)
        .where(RetagJob.status.in_(("queued", "running")))
        .values(status="superseded", finished_at=now, claimed_until=None)
    )
    job = RetagJob(
        id=f"retag_{uuid.uuid4().hex}",
        version_id=version_id,
        status="queued",
        done=0,
        total=0,
        attempts=0,
        created_at=now,
    )
    db_session.add(job)
    db_session.flush()
    return job


def rollback(*, db_session: Session) -> RetagJob | None:
    """Activate the version that was active before the current one (409 if there is none)."""
    lock(db_session=db_session)
    row = state(db_session=db_session)
    if row is None or row.previous_id is None:
        raise Conflict(
            "no earlier active version to roll back to", detail=[{"field": "version", "message": "none"}]
        )
    return activate(db_session=db_session, version_id=row.previous_id)


def get_job(*, db_session: Session, job_id: str) -> RetagJob:
    job = db_session.get(RetagJob, job_id)
    if job is None:
        raise NotFound(f"re-tag job {job_id!r} not found", detail=[{"field": "id", "message": "unknown"}])
    return job


def parse(data: object, *, source: str = "taxonomy") -> Taxonomy:
    """A taxonomy from API input; 422 naming the topic and field on any error."""
    try:
        return parse_taxonomy(data, source=source)
    except TaxonomyError as exc:
        raise InvalidInput(str(exc), detail=[{"field": "taxonomy", "message": str(exc)}]) from exc
