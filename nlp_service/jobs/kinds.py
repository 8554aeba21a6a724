"""The kinds of job a worker knows, registered by the domain that owns the work.

A kind runs in slices; each slice has three steps so that no write transaction is held during slow work::

    batch = kind.read(run, db_session)       # a short read transaction: the next items after run.cursor
    work = kind.compute(run, batch)          # no database: encode, predict, parse...
    step = kind.write(run, db_session, work)  # the write transaction, fenced by the runner (see runner.py)

``read`` returns None when nothing is left; the runner then calls ``finish`` (a last transaction) for the
job's result. ``plan`` runs once, before the first slice, and returns the estimated total. The runner stores
``step.cursor`` with the slice in the same transaction, so a job resumed by another worker starts after the
last committed slice and no slice is applied twice. Kinds keep loaded resources (models, an engine) in
``run.resources``, one dict per worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from nlp_service.auth.scopes import Scope
from nlp_service.config import Settings

P = TypeVar("P", bound=BaseModel)


class JobError(Exception):
    """The job cannot succeed (bad input, missing model): it fails without retrying."""


class JobDeferred(Exception):  # noqa: N818 - a signal, not an error
    """Not now (e.g. detection while the stored comments are re-tagged): the job goes back to the queue
    without spending an attempt, and the worker looks again after its poll interval."""


class JobStopped(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a kind when :meth:`JobRun.report` returned False: the job was cancelled or another
    worker holds it now; nothing more is written."""


@dataclass
class JobRun(Generic[P]):
    """What a kind's steps get: the job id, its parsed params and cursor, settings, the worker's resources."""

    job_id: str
    params: P
    cursor: dict[str, Any]
    settings: Settings
    resources: dict[str, Any] = field(default_factory=dict)
    sessions: Any = None  # the worker's session factory (for a kind that must sync served state)
    done: int = 0
    total: int = 0
    # Progress inside a long slice: ``report(done, total)`` stores it and renews the lease (its own short
    # transaction); False if the job was cancelled or is no longer this worker's (raise JobStopped then)
    report: Callable[[int, int], bool] = lambda done, total: True


@dataclass(frozen=True)
class Step:
    """What one slice did: the cursor after it, items handled, and a new total if it is known better now."""

    cursor: dict[str, Any]
    done: int
    total: int | None = None


@dataclass(frozen=True)
class JobKind(Generic[P]):
    name: str
    scope: Scope  # the scope a key needs to submit, see and cancel jobs of this kind
    params: type[P]
    plan: Callable[[JobRun[P], Session], tuple[int, dict[str, Any]]]  # (total, first cursor)
    read: Callable[[JobRun[P], Session], Any | None]
    compute: Callable[[JobRun[P], Any], Any]
    write: Callable[[JobRun[P], Session, Any], Step]
    finish: Callable[[JobRun[P], Session], dict[str, Any]] = lambda run, db_session: {}
    description: str = ""


KINDS: dict[str, JobKind[Any]] = {}

# Every kind and the module that registers it: imported on demand, so the API imports no heavy modules.
KIND_MODULES: dict[str, str] = {
    "detect": "nlp_service.anomaly.detect_jobs",
    "import": "nlp_service.comments.bulk_import",
    "reembed": "nlp_service.comments.reembed",
    "rescore": "nlp_service.comments.rescore",
}


def register(kind: JobKind[Any]) -> JobKind[Any]:
    existing = KINDS.get(kind.name)
    if existing is not None and existing.read.__qualname__ != kind.read.__qualname__:
        raise ValueError(f"job kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> JobKind[Any]:
    """The registered kind ``name`` (its module imported); KeyError if there is none."""
    if name not in KINDS and name in KIND_MODULES:
        importlib.import_module(KIND_MODULES[name])
    return KINDS[name]


def load_all() -> dict[str, JobKind[Any]]:
    for name in KIND_MODULES:
        get_kind(name)
    return KINDS
