"""Fault test: a worker process is SIGKILLed mid-delivery and restarted (``scripts/webhook_fault.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "webhook_fault.py"


def load_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("webhook_fault", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sigkill_mid_delivery_loses_nothing(db_url: str) -> None:
    summary = load_script().run(database_url=db_url, events=30, receiver_delay_s=0.3, lease_s=2.0)
    assert summary["missing_events"] == 0, summary
    assert summary["unknown_ids"] == 0 and summary["bad_signatures"] == 0, summary
    assert summary["unique_event_ids_received"] == 30, summary  # dedup by webhook-id: each exactly once
    assert summary["in_flight_at_kill"] > 0, summary  # the kill really hit sends in flight ...
    assert summary["events_with_retries"] > 0, summary  # ... which were re-sent with the same webhook-id
    assert summary["final_statuses"] == {"delivered": 30}, summary
    assert summary["second_worker_exit_code"] == 0, summary  # SIGTERM: graceful stop
    assert summary["ok"], summary
