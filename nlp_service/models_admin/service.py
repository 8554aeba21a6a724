"""Model registry operations for the API: list versions, reload the promoted ones, watch for promotions."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from nlp_service.errors import Conflict, NotFound
from nlp_service.inference.engine import HEAD_TASKS
from nlp_service.inference.protocol import AnalysisEngine
from nlp_service.inference.registry import REGISTRY_FILE, ModelRegistry, RegistryError
from nlp_service.models_admin.schemas import ModelsResponse, ModelVersionOut, ReloadResponse, TaskModelsOut

log = logging.getLogger(__name__)


def get_all(*, engine: AnalysisEngine) -> ModelsResponse:
    """Every head task's versions, with the registry's active flag and what this process serves."""
    registry = ModelRegistry(engine.settings.models_dir)
    serving = dict(engine.models.versions)
    tasks = []
    for task in registry.tasks():
        rows = registry.describe(task)
        tasks.append(
            TaskModelsOut(
                task=task,
                versions=[
                    ModelVersionOut(**row, serving=serving.get(task) == row["version"]) for row in rows
                ],
            )
        )
    return ModelsResponse(serving=serving, tasks=tasks)


def reload(*, engine: AnalysisEngine) -> ReloadResponse:
    """Load the registry's active versions and swap them in; requests in flight finish on the old set.

    A version that cannot be served (unknown, broken, or trained for another encoder) is refused with 409 and
    the current models stay in place.
    """
    previous = dict(engine.models.versions)
    try:
        models = engine.reload()
    except RegistryError as exc:
        raise Conflict(f"reload refused, still serving the previous models: {exc}") from exc
    return ReloadResponse(
        previous=previous, serving=dict(models.versions), changed=previous != models.versions
    )


def promote(*, engine: AnalysisEngine, task: str, version: str | None) -> ReloadResponse:
    """Make ``version`` of ``task`` active (``None``: roll back to the previously active one) and serve it.

    404 for an unknown task, 409 for an unknown version, nothing to roll back to, or a version that cannot be
    served; on a refused reload the registry's previous active version is restored (nothing half-applied).
    """
    registry = ModelRegistry(engine.settings.models_dir)
    if task not in registry.tasks():
        raise NotFound(f"no model task {task!r} (known: {', '.join(registry.tasks())})")
    before = registry.active_version(task) if registry.versions(task) else None
    try:
        if version is None:
            registry.rollback(task)
        else:
            registry.promote(task, version)
    except RegistryError as exc:
        raise Conflict(str(exc)) from exc
    try:
        return reload(engine=engine)
    except Conflict:
        if before is not None:
            registry.promote(task, before)
        raise


def registry_fingerprint(models_dir: Path) -> tuple[tuple[str, float], ...]:
    """Modification times of the head tasks' active pointers (changes when a version is promoted)."""
    out = []
    for task in HEAD_TASKS:
        pointer = models_dir / task / REGISTRY_FILE
        out.append((task, pointer.stat().st_mtime if pointer.exists() else 0.0))
    return tuple(out)


async def watch_registry(engine: AnalysisEngine, interval_s: float) -> None:
    """Reload the engine whenever a task's active pointer changes (a promotion or rollback)."""
    models_dir = engine.settings.models_dir
    seen = registry_fingerprint(models_dir)
    while True:
        await asyncio.sleep(interval_s)
        current = registry_fingerprint(models_dir)
        if current == seen:
            continue
        seen = current
        try:
            result = await asyncio.to_thread(reload, engine=engine)
            log.info("registry changed: now serving %s", result.serving)
        except Exception:  # keep serving the previous models, try again on the next change
            log.exception("registry changed but the new models could not be loaded")
