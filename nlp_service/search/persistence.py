"""Saving and loading a vector index: the FAISS file and a JSON file of metadata beside it, each written to a
temporary file and renamed into place (a reader never sees half a file)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import faiss
import numpy as np


def meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def write_temp(index: faiss.Index, path: Path) -> Path:
    """Write ``index`` to a temporary file beside ``path`` and return it (then :func:`commit` it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    faiss.write_index(index, str(tmp))
    return tmp


def commit(tmp: Path, path: Path, meta: Mapping[str, object]) -> None:
    """Rename the index written by :func:`write_temp` to ``path``, then write its metadata atomically."""
    os.replace(tmp, path)
    tmp_meta = meta_path(path).with_name(f".{meta_path(path).name}.tmp")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_path(path))


def read(path: Path, *, dim: int, source_id: str | None) -> tuple[faiss.Index, np.ndarray, list[int]]:
    """The saved index, its ids and its tombstones (as saved). Raises if the files are missing or unreadable,
    or the index does not fit: another dimension, or saved for another ``source_id`` (when one is given)."""
    meta = json.loads(meta_path(path).read_text())
    index = faiss.read_index(str(path))
    if meta.get("dim") != dim or index.d != dim:
        raise ValueError(f"dimension {index.d} != {dim}")
    if source_id is not None and meta.get("source_id") != source_id:
        raise ValueError(f"saved for database {meta.get('source_id')}, not {source_id}")
    if not isinstance(index, faiss.IndexIDMap2):
        index = faiss.downcast_index(index)
    if not isinstance(index, faiss.IndexIDMap):
        raise ValueError(f"not an id-mapped index: {type(index).__name__}")
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    return index, ids, meta.get("tombstones", [])
