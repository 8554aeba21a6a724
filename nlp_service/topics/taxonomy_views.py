"""Taxonomy endpoints: topics (create, read, update, delete, examples), import/export, versions,
activation, rollback and re-tag jobs. Reads need scope ``search``, writes ``topics``.

Every write makes a new taxonomy version (``?activate=true`` also activates it); see ``topics.changes``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp_service.comments.tables import Comment
from nlp_service.deps import EngineDep, SessionFactoryDep, in_transaction
from nlp_service.errors import ErrorResponse, InvalidInput, NotFound, OpenApiResponses
from nlp_service.topics import edits, versions
from nlp_service.topics.changes import ChangeResult, apply_change
from nlp_service.topics.tables import RetagJob, TaxonomyVersion
from nlp_service.topics.taxonomy import Taxonomy
from nlp_service.topics.taxonomy_schemas import (
    ActivationOut,
    ChangeOut,
    ChangeQuery,
    ExampleRef,
    ExamplesIn,
    RetagJobOut,
    TopicFields,
    TopicIn,
    TopicOut,
    VersionDetail,
    VersionOut,
    VersionQuery,
)

router = APIRouter(tags=["topics"])

TopicId = Annotated[str, Path(min_length=1, max_length=100, description="A taxonomy topic id")]
VersionId = Annotated[int, Path(ge=1, description="A taxonomy version number")]
NOT_FOUND: OpenApiResponses = {404: {"model": ErrorResponse, "description": "No such topic or version"}}
CHANGE: OpenApiResponses = {
    **NOT_FOUND,
    409: {"model": ErrorResponse, "description": "Duplicate id, or the taxonomy changed meanwhile"},
}


# -- mapping -----------------------------------------------------------------------------------------------
def job_out(job: RetagJob | None) -> RetagJobOut | None:
    if job is None:
        return None
    return RetagJobOut(
        id=job.id,
        version_id=job.version_id,
        status=job.status,
        done=job.done,
        total=job.total,
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def version_out(version: TaxonomyVersion, active_id: int | None) -> VersionOut:
    return VersionOut(
        id=version.id,
        parent_id=version.parent_id,
        change=version.change,
        created_by=version.created_by,
        created_at=version.created_at,
        active=version.id == active_id,
        topics=len(version.definition.get("topics", [])),
    )


def change_out(result: ChangeResult) -> ChangeOut:
    return ChangeOut(
        version=version_out(result.version, result.active_id),
        active_version=result.active_id,
        retag_job=job_out(result.job),
    )


def _actor(request: Request) -> str | None:
    return getattr(request.state, "key_id", None)


def _version(s: Session, version_id: int | None) -> TaxonomyVersion:
    if version_id is not None:
        return versions.get(db_session=s, version_id=version_id)
    head = versions.head(db_session=s)
    if head is None:
        raise NotFound("no taxonomy version yet", detail=[{"field": "version", "message": "none"}])
    return head


def _examples(s: Session, refs: list[ExampleRef]) -> list[str]:
    """Texts of the examples; 422 naming every comment id that is not stored."""
    ids = [r.comment_id for r in refs if r.comment_id is not None]
    found = dict(s.execute(select(Comment.id, Comment.text).where(Comment.id.in_(ids))).all()) if ids else {}
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput(
            f"examples name unknown comments: {missing}",
            detail=[{"field": "comment_id", "message": f"unknown: {i}"} for i in missing],
        )
    return [r.text if r.text is not None else found[r.comment_id or ""] for r in refs]


async def _change(
    request: Request, sessions: Any, engine: Any, edit: Any, change: str, activate: bool
) -> ChangeOut:
    result = await apply_change(
        sessions, engine, edit, change=change, actor=_actor(request), activate=activate
    )
    return change_out(result)


# -- taxonomy, versions, jobs ------------------------------------------------------------------------------
@router.get("/topics/taxonomy", responses=NOT_FOUND)
async def export_taxonomy(
    query: Annotated[VersionQuery, Query()], sessions: SessionFactoryDep
) -> dict[str, Any]:
    """The whole taxonomy of a version (default: the newest) as JSON, as ``PUT`` takes it back."""

    def read(s: Session) -> dict[str, Any]:
        version = _version(s, query.version)
        return {**version.definition, "version": str(version.id)}

    return await in_transaction(sessions, read)


@router.put("/topics/taxonomy", response_model=ChangeOut, responses=CHANGE)
async def import_taxonomy(
    request: Request,
    taxonomy: Annotated[dict[str, Any], Body(description="a taxonomy as GET /v1/topics/taxonomy gives it")],
    query: Annotated[ChangeQuery, Query()],
    sessions: SessionFactoryDep,
    engine: EngineDep,
) -> ChangeOut:
    """Replace the whole taxonomy with a new version; 422 naming the topic and field if it has errors
    (nothing is stored, the active version stays)."""
    imported = edits.validated(versions.parse(taxonomy))
    return await _change(
        request, sessions, engine, lambda _t, _s: imported, "imported a taxonomy", query.activate
    )


@router.get("/topics/versions", response_model=list[VersionOut])
async def list_versions(sessions: SessionFactoryDep) -> list[VersionOut]:
    """Taxonomy versions, newest first (the 100 newest)."""

    def read(s: Session) -> list[VersionOut]:
        active = versions.active_id(db_session=s)
        return [version_out(v, active) for v in versions.get_all(db_session=s)]

    return await in_transaction(sessions, read)


@router.get("/topics/versions/{version_id}", response_model=VersionDetail, responses=NOT_FOUND)
async def get_version(version_id: VersionId, sessions: SessionFactoryDep) -> VersionDetail:
    """One version: its taxonomy and each topic's method and cross-validated quality."""

    def read(s: Session) -> VersionDetail:
        v = versions.get(db_session=s, version_id=version_id)
        out = version_out(v, versions.active_id(db_session=s))
        return VersionDetail(**out.model_dump(), quality=v.quality, taxonomy=v.definition)

    return await in_transaction(sessions, read)


@router.post(
    "/topics/versions/{version_id}/activate",
    response_model=ActivationOut,
    status_code=202,
    responses=NOT_FOUND,
)
async def activate_version(version_id: VersionId, sessions: SessionFactoryDep) -> ActivationOut:
    """Serve a version (every replica within ``NLP_TAXONOMY_POLL_S``) and re-tag stored comments in the
    background (follow the job at ``GET /v1/topics/jobs/{id}``)."""

    def write(s: Session) -> ActivationOut:
        job = versions.activate(db_session=s, version_id=version_id)
        return ActivationOut(active_version=version_id, retag_job=job_out(job))

    return await in_transaction(sessions, write)


@router.post("/topics/rollback", response_model=ActivationOut, status_code=202, responses=CHANGE)
async def rollback(sessions: SessionFactoryDep) -> ActivationOut:
    """Activate the version that was active before the current one (and re-tag)."""

    def write(s: Session) -> ActivationOut:
        job = versions.rollback(db_session=s)
        return ActivationOut(active_version=versions.active_id(db_session=s) or 0, retag_job=job_out(job))

    return await in_transaction(sessions, write)


@router.get("/topics/jobs/{job_id}", response_model=RetagJobOut, responses=NOT_FOUND)
async def get_job(
    job_id: Annotated[str, Path(min_length=1, max_length=40)], sessions: SessionFactoryDep
) -> RetagJobOut:
    """A re-tag job's status and progress."""
    job = await in_transaction(sessions, lambda s: versions.get_job(db_session=s, job_id=job_id))
    out = job_out(job)
    assert out is not None
    return out


# -- topics ------------------------------------------------------------------------------------------------
@router.post("/topics", response_model=ChangeOut, status_code=201, responses=CHANGE)
async def create_topic(
    request: Request,
    topic: TopicIn,
    query: Annotated[ChangeQuery, Query()],
    sessions: SessionFactoryDep,
    engine: EngineDep,
) -> ChangeOut:
    """Add a topic (a new version); 409 if its id exists."""
    new = edits.topic_from(topic.model_dump(exclude_none=True))

    def edit(t: Taxonomy, _s: Session) -> Taxonomy:
        return edits.create_topic(t, new)

    return await _change(request, sessions, engine, edit, f"created topic {new.id}", query.activate)


@router.get("/topics/{topic_id}", response_model=TopicOut, responses=NOT_FOUND)
async def get_topic(
    topic_id: TopicId, query: Annotated[VersionQuery, Query()], sessions: SessionFactoryDep
) -> TopicOut:
    """One topic of a version (default: the newest), with its method and cross-validated quality."""

    def read(s: Session) -> TopicOut:
        version = _version(s, query.version)
        topic = versions.taxonomy_of(version).get(topic_id)
        if topic is None:
            raise edits.not_found(topic_id)
        quality = version.quality.get(topic_id, {})
        return TopicOut(
            **{
                "threshold": None,
                "parent": None,
                "positives": [],
                "negatives": [],
                "query": None,
                **topic.to_dict(),
            },
            method=quality.get("method", "zero_shot"),
            cv_precision=quality.get("cv_precision"),
            cv_recall=quality.get("cv_recall"),
            version=version.id,
        )

    return await in_transaction(sessions, read)


@router.patch("/topics/{topic_id}", response_model=ChangeOut, responses=CHANGE)
async def update_topic(
    request: Request,
    topic_id: TopicId,
    changes: TopicFields,
    query: Annotated[ChangeQuery, Query()],
    sessions: SessionFactoryDep,
    engine: EngineDep,
) -> ChangeOut:
    """Replace the fields given (a new version)."""
    fields = changes.model_dump(exclude_unset=True)

    def edit(t: Taxonomy, _s: Session) -> Taxonomy:
        return edits.update_topic(t, topic_id, fields)

    return await _change(request, sessions, engine, edit, f"updated topic {topic_id}", query.activate)


@router.delete("/topics/{topic_id}", response_model=ChangeOut, responses=CHANGE)
async def delete_topic(
    request: Request,
    topic_id: TopicId,
    query: Annotated[ChangeQuery, Query()],
    sessions: SessionFactoryDep,
    engine: EngineDep,
) -> ChangeOut:
    """Remove a topic (a new version); 409 while it has sub-topics."""

    def edit(t: Taxonomy, _s: Session) -> Taxonomy:
        return edits.delete_topic(t, topic_id)

    return await _change(request, sessions, engine, edit, f"deleted topic {topic_id}", query.activate)


@router.post("/topics/{topic_id}/examples", response_model=ChangeOut, responses=CHANGE)
async def add_examples(
    request: Request,
    topic_id: TopicId,
    examples: ExamplesIn,
    query: Annotated[ChangeQuery, Query()],
    sessions: SessionFactoryDep,
    engine: EngineDep,
) -> ChangeOut:
    """Teach a topic by example: stored comments (by id) or texts, positive or negative (a new version).
    With enough positives the topic gets a learned scorer; 422 naming unknown comment ids."""

    def edit(t: Taxonomy, s: Session) -> Taxonomy:
        return edits.add_examples(
            t, topic_id, positives=_examples(s, examples.positive), negatives=_examples(s, examples.negative)
        )

    n = len(examples.positive) + len(examples.negative)
    return await _change(
        request, sessions, engine, edit, f"{n} examples for topic {topic_id}", query.activate
    )
