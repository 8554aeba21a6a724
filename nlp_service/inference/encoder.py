"""Transformer encoder: one forward pass per comment, giving the search embedding and the heads' features.

The encoder returns, for every text, the attention-masked mean of each hidden layer (the embedding layer and
every transformer layer). The search embedding is the L2-normalised mean of the last layer (the
sentence-transformers recipe for all-MiniLM-L6-v2); heads read whichever layers their config names. All of
it comes from one forward pass.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# One forward pass of MiniLM-L6 on 2 CPU cores costs ~15-20 ms beyond its tokens (~0.4 ms each): ~40 tokens.
DEFAULT_BATCH_OVERHEAD_TOKENS = 40


@dataclass(frozen=True)
class EncoderInfo:
    """What identifies an encoder: heads record it and refuse to run on another one."""

    name: str
    sha256: str
    dim: int
    num_layers: int
    max_length: int
    quantized: bool


@dataclass
class Encoded:
    """The result of one encoder pass over a batch of texts.

    ``layers`` has shape (n, num_layers + 1, dim): masked mean pooling of every hidden state.
    ``embedding`` has shape (n, dim): L2-normalised mean pooling of the last layer.
    """

    layers: np.ndarray
    embedding: np.ndarray
    truncated: list[bool]
    token_counts: list[int]

    def __len__(self) -> int:
        return len(self.truncated)

    def take(self, index: slice | list[int]) -> Encoded:
        """A sub-batch (rows picked by a slice or list of indices)."""
        if isinstance(index, slice):
            rows = list(range(len(self)))[index]
        else:
            rows = list(index)
        return Encoded(
            layers=self.layers[rows],
            embedding=self.embedding[rows],
            truncated=[self.truncated[i] for i in rows],
            token_counts=[self.token_counts[i] for i in rows],
        )

    @staticmethod
    def concat(parts: list[Encoded]) -> Encoded:
        return Encoded(
            layers=np.concatenate([p.layers for p in parts]),
            embedding=np.concatenate([p.embedding for p in parts]),
            truncated=[t for p in parts for t in p.truncated],
            token_counts=[c for p in parts for c in p.token_counts],
        )


def weights_sha256(model_dir: Path) -> str:
    """sha256 of the weight file in a local model folder."""
    for name in WEIGHT_FILES:
        path = model_dir / name
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            return digest.hexdigest()
    raise FileNotFoundError(f"no weight file ({', '.join(WEIGHT_FILES)}) in {model_dir}")


def resolve_model_dir(name_or_path: str) -> Path:
    """A local folder for a path or a hub name (the hub is only reached where it is reachable)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download  # installed with transformers

    return Path(
        snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
    )


def padded_cost(batch_lengths: list[int], overhead_tokens: int) -> int:
    """Modelled cost of one forward pass, in tokens: a fixed per-pass overhead plus the padded tokens."""
    return overhead_tokens + len(batch_lengths) * max(batch_lengths)


def token_budget_batches(
    order: list[int],
    lengths: list[int],
    batch_size: int,
    max_tokens: int,
    overhead_tokens: int = DEFAULT_BATCH_OVERHEAD_TOKENS,
) -> list[list[int]]:
    """Split indices sorted by ascending length into consecutive batches of the least modelled cost.

    Each batch holds <= ``batch_size`` items whose padded size (items x longest) stays within ``max_tokens``
    (a single longer item still gets its own batch). The cost of a batch is ``overhead_tokens`` (what one
    forward pass costs beyond its tokens: reading the weights, starting threads) plus its padded tokens, so
    short texts are not padded to the length of long ones, yet texts are not encoded in tiny, overhead-bound
    batches either. Exact dynamic programming over the sorted order, O(n x batch_size).
    """
    n = len(order)
    if n == 0:
        return []
    sorted_lengths = np.asarray([lengths[i] for i in order], dtype=np.int64)
    best = np.zeros(n + 1, dtype=np.int64)  # best[j]: least cost of the first j items
    start_of = np.zeros(n + 1, dtype=np.int64)  # where the last batch of that solution starts
    for j in range(1, n + 1):
        longest = int(sorted_lengths[j - 1])  # sorted: the batch's last item is its longest
        most = max(1, min(batch_size, max_tokens // longest, j))  # items a batch ending at j may hold
        starts = np.arange(j - most, j)
        costs = best[starts] + overhead_tokens + (j - starts) * longest
        k = int(np.argmin(costs))  # ties: the first, i.e. the largest batch (fewest passes)
        start_of[j] = starts[k]
        best[j] = costs[k]
    batches: list[list[int]] = []
    j = n
    while j > 0:
        i = int(start_of[j])
        batches.append(order[i:j])
        j = i
    batches.reverse()
    return batches


class Encoder:
    """A transformer with mean pooling, truncation reporting and length-sorted dynamic padding."""

    def __init__(
        self,
        name_or_path: str,
        *,
        max_seq_length: int = 256,
        threads: int | None = None,
        quantize: bool = False,
        batch_size: int = 64,
        max_tokens: int = 16384,
        overhead_tokens: int = DEFAULT_BATCH_OVERHEAD_TOKENS,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        model_dir = resolve_model_dir(name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModel.from_pretrained(str(model_dir))
        model.eval()
        if quantize:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model
        config = model.config
        model_limit = int(getattr(config, "max_position_embeddings", 512))
        tokenizer_limit = int(getattr(self.tokenizer, "model_max_length", model_limit) or model_limit)
        self.max_length = min(max_seq_length, model_limit, tokenizer_limit)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.overhead_tokens = overhead_tokens
        self.info = EncoderInfo(
            name=name_or_path,
            sha256=weights_sha256(model_dir),
            dim=int(config.hidden_size),
            num_layers=int(config.num_hidden_layers),
            max_length=self.max_length,
            quantized=quantize,
        )
        self._lock = threading.Lock()
        log.info("encoder loaded: %s sha256=%s quantized=%s", name_or_path, self.info.sha256[:12], quantize)

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Token counts without truncation (special tokens included)."""
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        return [len(x) for x in ids]

    def encode(
        self,
        texts: list[str],
        *,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        progress: bool = False,
    ) -> Encoded:
        """Encode texts in length-sorted batches; results come back in input order.

        A batch holds at most ``batch_size`` texts and, padded, at most ``max_tokens`` tokens, so short texts
        are not padded to the length of long ones.
        """
        if not texts:
            dim, layers = self.info.dim, self.info.num_layers + 1
            return Encoded(np.zeros((0, layers, dim), np.float32), np.zeros((0, dim), np.float32), [], [])
        lengths = self.token_lengths(texts)
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        batches = token_budget_batches(
            order,
            [min(n, self.max_length) for n in lengths],
            batch_size or self.batch_size,
            max_tokens or self.max_tokens,
            self.overhead_tokens,
        )
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="encoding", unit="batch")
        parts = [self._encode_batch([texts[i] for i in rows], [lengths[i] for i in rows]) for rows in batches]
        merged = Encoded.concat(parts)
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[np.asarray(order)] = np.arange(len(order))
        return merged.take(inverse.tolist())

    def _encode_batch(self, texts: list[str], lengths: list[int]) -> Encoded:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with self._lock, torch.inference_mode():
            out = self.model(**batch, output_hidden_states=True)
        mask = batch["attention_mask"].unsqueeze(-1).to(torch.float32)  # (b, t, 1)
        denom = mask.sum(dim=1).clamp(min=1.0)  # (b, 1)
        hidden = torch.stack(out.hidden_states, dim=1)  # (b, L+1, t, d)
        pooled = (hidden * mask.unsqueeze(1)).sum(dim=2) / denom.unsqueeze(1)  # (b, L+1, d)
        last = pooled[:, -1]
        embedding = torch.nn.functional.normalize(last, p=2, dim=-1)
        return Encoded(
            layers=pooled.numpy().astype(np.float32, copy=False),
            embedding=embedding.numpy().astype(np.float32, copy=False),
            truncated=[n > self.max_length for n in lengths],
            token_counts=[min(n, self.max_length) for n in lengths],
        )
