"""A job kind for the framework tests: ``items`` writes one ``job_files`` row per item (its primary key
refuses an item written twice), ``per_slice`` items a slice, optional sleep in ``compute`` and errors."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from nlp_service.jobs.kinds import JobError, JobKind, JobRun, Step, register
from nlp_service.jobs.tables import JobFile


class ItemsParams(BaseModel):
    items: int = 10
    per_slice: int = 3
    sleep_s: float = 0.0
    fail_at_slice: int | None = None  # a RuntimeError (retried) when this slice is computed
    fatal: bool = False  # a JobError instead (not retried)


def plan(run: JobRun[ItemsParams], db_session: Session) -> tuple[int, dict[str, Any]]:
    return run.params.items, {"next": 0}


def read(run: JobRun[ItemsParams], db_session: Session) -> list[int] | None:
    start = int(run.cursor["next"])
    end = min(run.params.items, start + run.params.per_slice)
    return list(range(start, end)) or None


def compute(run: JobRun[ItemsParams], items: list[int]) -> list[int]:
    if run.params.sleep_s:
        time.sleep(run.params.sleep_s)
    if run.params.fail_at_slice is not None and items[0] // run.params.per_slice == run.params.fail_at_slice:
        if run.params.fatal:
            raise JobError("this item cannot be done")
        raise RuntimeError("transient failure")
    return items


def write(run: JobRun[ItemsParams], db_session: Session, items: list[int]) -> Step:
    for i in items:
        db_session.add(JobFile(job_id=run.job_id, seq=i, data=b"x"))
    db_session.flush()
    return Step(cursor={"next": items[-1] + 1}, done=len(items))


def finish(run: JobRun[ItemsParams], db_session: Session) -> dict[str, Any]:
    return {"items": run.params.items}


ITEMS = register(
    JobKind(
        name="test-items",
        scope="admin",
        params=ItemsParams,
        plan=plan,
        read=read,
        compute=compute,
        write=write,
        finish=finish,
        description="framework test kind",
    )
)
