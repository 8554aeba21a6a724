"""VectorIndex: exact vs HNSW, tombstones, writes during a background rebuild, save/load."""

from __future__ import annotations

import threading
import time

import numpy as np

from nlp_service.search.faiss_index import IndexParams
from nlp_service.search.index import VectorIndex


def unit_vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_writes_during_rebuild_are_replayed(tmp_path) -> None:
    vecs = unit_vectors(120)
    ids = np.arange(1, 121, dtype=np.int64)
    gate = threading.Event()

    def loader():  # type: ignore[no-untyped-def]
        yield ids[:50], vecs[:50]
        gate.wait(10)
        yield ids[50:100], vecs[50:100]

    index = VectorIndex(IndexParams(dim=16, exact_max=10, hnsw_m=8), path=tmp_path / "v.faiss")
    index.configure(loader=loader, differ=lambda: (ids[:100], lambda wanted: iter(())))
    index.request("rebuild")
    while index._journal is None:  # the build has started and journals writes
        time.sleep(0.001)
    index.add(ids[100:], vecs[100:])  # served by the old index meanwhile
    index.remove([3, 105])
    assert index.search(vecs[110], 1)[1][0, 0] == 111
    gate.set()
    assert index.wait(10)
    assert index.kind == "hnsw" and len(index) == 118
    assert 3 not in index and 105 not in index and 111 in index
    for row in (0, 60, 110):
        assert index.search(vecs[row], 1)[1][0, 0] == ids[row]
    assert 3 not in set(index.search(vecs[2], 118)[1][0].tolist())

    index.remove([7])  # HNSW: tombstoned
    index.save()
    again = VectorIndex(IndexParams(dim=16, exact_max=10, hnsw_m=8), path=tmp_path / "v.faiss")
    assert again.load()
    assert len(again) == 117 and 7 not in again and again.kind == "hnsw"
    assert 7 not in set(again.search(vecs[6], 20)[1][0].tolist())


def test_flat_index_removes_and_reconstructs() -> None:
    vecs = unit_vectors(20)
    index = VectorIndex(IndexParams(dim=16, exact_max=100))
    index.add(np.arange(20), vecs)
    index.add([5], vecs[:1])  # already present: skipped
    index.remove([5, 99])
    assert len(index) == 19 and index.kind == "flat"
    found, got = index.reconstruct([4, 5, 6])
    assert found.tolist() == [4, 6]
    np.testing.assert_allclose(got, vecs[[4, 6]])
    scores, ids = index.search(vecs[:2], 25)
    assert ids[0, 0] == 0 and ids[1, 0] == 1 and (ids[:, 19:] == -1).all()
