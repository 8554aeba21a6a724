"""On-disk cache of encoder outputs, so that each dataset is encoded once (float16, under ``var/cache``).

A cache entry is keyed by the encoder's identity (weights sha256, max length, quantisation) and the exact list
of texts, in order.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nlp_service.config import REPO_ROOT
from nlp_service.inference.encoder import Encoded, Encoder, EncoderInfo

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = REPO_ROOT / "var" / "cache" / "features"


def cache_key(info: EncoderInfo, texts: list[str], runtime: str = "torch") -> str:
    """sha256 over the encoder identity, its runtime (torch keys predate runtimes) and the texts, in order."""
    identity = f"{info.sha256}|{info.max_length}|{info.quantized}|{len(texts)}"
    if runtime != "torch":
        identity += f"|{runtime}"
    digest = hashlib.sha256(identity.encode())
    for text in texts:
        digest.update(b"\x1e")
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class FeatureCache:
    """Encode through a cache; the encoder itself is only built on the first miss."""

    def __init__(self, encoder: Encoder | Callable[[], Encoder], cache_dir: Path | None = DEFAULT_CACHE_DIR):
        self._encoder = encoder if isinstance(encoder, Encoder) else None
        self._factory = None if isinstance(encoder, Encoder) else encoder
        self.cache_dir = cache_dir

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            assert self._factory is not None
            self._encoder = self._factory()
        return self._encoder

    def encode(self, texts: list[str], *, progress: bool = True) -> Encoded:
        """Encoded features for ``texts`` (from disk when present, else encoded and stored)."""
        if self.cache_dir is None:
            return self.encoder.encode(texts, progress=progress)
        path = self.cache_dir / f"{cache_key(self.encoder.info, texts, self.encoder.features_key)}.npz"
        if path.is_file():
            with np.load(path) as data:
                return Encoded(
                    layers=data["layers"].astype(np.float32),
                    embedding=data["embedding"].astype(np.float32),
                    truncated=data["truncated"].astype(bool).tolist(),
                    token_counts=data["token_counts"].astype(int).tolist(),
                )
        encoded = self.encoder.encode(texts, progress=progress)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(
            tmp,
            layers=encoded.layers.astype(np.float16),
            embedding=encoded.embedding.astype(np.float16),
            truncated=np.asarray(encoded.truncated, dtype=bool),
            token_counts=np.asarray(encoded.token_counts, dtype=np.int32),
        )
        os.replace(tmp, path)
        log.info("cached %d encoded texts at %s", len(texts), path)
        # Return what a later cache hit returns, so that results do not depend on the cache state.
        return self.encode(texts, progress=progress)


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of commands that encode: --encoder, --cache-dir, --no-cache, --threads."""
    parser.add_argument(
        "--encoder", default=None, help="encoder path (default: the shipped all-MiniLM-L6-v2)"
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="feature cache")
    parser.add_argument("--no-cache", action="store_true", help="encode without the feature cache")
    parser.add_argument("--threads", type=int, default=2)
