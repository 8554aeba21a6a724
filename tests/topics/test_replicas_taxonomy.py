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
    # the seed: version 1, or 2 on PostgreSQL when the replicas raced to seed and the one that drew id 2 from
    # the sequence committed first (the other's insert rolled back); both serve the same one
    seeded = serving(a)
    assert seeded == serving(b) and seeded in ("taxonomy@v1", "taxonomy@v2"), seeded
    topic = {"id": "sales_tax", "name": "Sales tax", "description": "wrong sales tax charged"}
    r = a.client.post("/v1/topics", json=topic)
    assert r.status_code == 201, r.text
    # the new version's id comes after the seed's (and after the number a rolled-back seed insert took)
    version_id = r.json()["version"]["id"]
    assert version_id > int(seeded.removeprefix("taxonomy@v"))
    r = a.client.post(f"/v1/topics/versions/{version_id}/activate")
    assert r.status_code == 202, r.text
    label = f"taxonomy@v{version_id}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < SERVED_WITHIN_S and {serving(a), serving(b)} != {label}:
        time.sleep(0.1)
    assert serving(b) == label, f"replica b still serves {serving(b)}"
    assert serving(a) == label, f"replica a still serves {serving(a)}"
    assert "sales_tax" in [t["id"] for t in b.client.get("/v1/topics").json()["topics"]]
