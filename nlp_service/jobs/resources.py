"""Heavy resources a job kind loads once per worker and keeps in ``run.resources``."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nlp_service.inference.engine import Engine
    from nlp_service.jobs.kinds import JobRun

_lock = threading.Lock()


def engine(run: JobRun[Any]) -> Engine:
    """The worker's inference engine (encoder, heads, topics), loaded on first use; an embedded worker
    uses the API's own engine when the app registered it (``resources["engine"]``)."""
    with _lock:
        found = run.resources.get("engine")
        if found is None:
            from nlp_service.inference.engine import Engine

            found = Engine(run.settings)
            run.resources["engine"] = found
        return found
