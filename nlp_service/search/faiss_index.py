"""FAISS index construction: parameters, the right kind of index for a size, bulk builds, OpenMP threads.

Exact search (``IndexFlatIP``) up to ``exact_max`` vectors, HNSW (``IndexHNSWFlat``, inner product) above;
both wrapped in ``IndexIDMap2`` so ids are row ids and vectors can be reconstructed by id.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import faiss
import numpy as np

_omp = threading.local()


def omp_threads(n: int) -> None:
    """Set the OpenMP threads of the calling thread (a per-thread setting). Single queries and small adds
    run on 1 thread: waking a team of OpenMP threads costs more than the search itself (measured 8 ms vs
    0.3 ms per query on 2 busy cores); builds use every core."""
    if getattr(_omp, "n", None) != n:
        faiss.omp_set_num_threads(n)
        _omp.n = n


@dataclass(frozen=True)
class IndexParams:
    dim: int = 384
    exact_max: int = 50_000
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 160
    tombstone_fraction: float = 0.05  # rebuild an HNSW index when this share of its vectors is deleted


def make_index(params: IndexParams, n: int) -> faiss.Index:
    """An empty index of the right kind for ``n`` vectors."""
    if n <= params.exact_max:
        inner: faiss.Index = faiss.IndexFlatIP(params.dim)
    else:
        inner = faiss.IndexHNSWFlat(params.dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = params.ef_construction
        inner.hnsw.efSearch = params.ef_search
    return faiss.IndexIDMap2(inner)


def index_kind(index: faiss.Index) -> str:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"


def build_index(params: IndexParams, ids: np.ndarray, vecs: np.ndarray, chunk: int = 50_000) -> faiss.Index:
    """A new index of the right kind holding ``vecs`` under ``ids`` (built on every core)."""
    omp_threads(os.cpu_count() or 1)
    index = make_index(params, len(ids))
    for start in range(0, len(ids), chunk):
        index.add_with_ids(
            np.ascontiguousarray(vecs[start : start + chunk]),
            np.ascontiguousarray(ids[start : start + chunk]),
        )
    return index
