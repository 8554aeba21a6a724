"""Two API processes on one database: a taxonomy version activated through one is served by the other within
a few seconds, without a restart (each polls the active version, ``NLP_TAXONOMY_POLL_S``)."""

from __future__ import annotations

import time

import pytest

from tests.search.test_replicas import Replica, replicas

__all__ = ["replicas"]

SERVED_WITHIN_S = 10.0  # the poll interval (2 s) plus a loaded CI machine's slack


def serving(replica: Replica) -> str:
    return replica.client.get("/info").json()["model_versions"]["topics"]


@pytest.mark.slow
def test_an_activated_version_is_served_by_every_replica(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    assert serving(a) == serving(b) == "taxonomy@v1"
    topic = {"id": "sales_tax", "name": "Sales tax", "description": "wrong sales tax charged"}
    r = a.client.post("/v1/topics", json=topic)
    assert r.status_code == 201, r.text
    # the new version's id: 2, or more on PostgreSQL when both replicas raced to seed version 1 (the loser's
    # rolled-back insert still took a number from the sequence)
    version_id = r.json()["version"]["id"]
    assert version_id >= 2
    r = a.client.post(f"/v1/topics/versions/{version_id}/activate")
    assert r.status_code == 202, r.text
    label = f"taxonomy@v{version_id}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < SERVED_WITHIN_S and {serving(a), serving(b)} != {label}:
        time.sleep(0.1)
    assert serving(b) == label, f"replica b still serves {serving(b)}"
    assert serving(a) == label, f"replica a still serves {serving(a)}"
    assert "sales_tax" in [t["id"] for t in b.client.get("/v1/topics").json()["topics"]]
