"""Transformer encoder: one forward pass per comment, giving the search embedding and the heads' features.

The encoder returns, for every text, the attention-masked mean of each hidden layer (the embedding layer and
every transformer layer). The search embedding is the L2-normalised mean of the last layer (the
sentence-transformers recipe for all-MiniLM-L6-v2); heads read whichever layers their config names. All of
it comes from one forward pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from nlp_service.inference.adapter import (
    Adapter,
    adapted_sha256,
    apply_adapter,
    check_base,
    file_sha256,
    is_adapter_dir,
    load_adapter,
)
from nlp_service.inference.onnx_runtime import OnnxSession, export_onnx, pool_layers
from nlp_service.inference.quantize import DEFAULT_KEEP_FP32, quantize_onnx_apart
from nlp_service.inference.sentences import sentence_embeddings
from nlp_service.inference.token_budget import DEFAULT_BATCH_OVERHEAD_TOKENS, token_budget_batches

log = logging.getLogger(__name__)
R = TypeVar("R")

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
RUNTIMES = ("onnx", "torch")
# Warm-up inputs: one text, and a padded batch of texts of different lengths.
WARM_UP_BATCHES = (
    ["warm-up comment: the delivery was late."],
    ["warm-up comment: the delivery was late and nobody answered my emails.", "great support, thanks!"],
)
# ONNX Runtime must give torch's features: summation order moves them by ~1e-6, a wrong graph by far more.
ONNX_MAX_ABS_DIFF = 1e-3
# int8 ONNX Runtime against fp32 torch: search-vector cosine >= this (measured: mean 0.992, min 0.97, tweets)
INT8_MIN_COSINE = 0.95


@dataclass(frozen=True)
class EncoderInfo:
    """What identifies an encoder: heads record it and refuse to run on another one."""

    name: str
    sha256: str
    dim: int
    num_layers: int
    max_length: int
    quantized: bool
    adapter: str | None = None  # "<version>@<sha256[:12]>" of a LoRA adapter applied onto the base weights
    base_sha256: str | None = None  # the base weights' sha256 when an adapter is applied (else ``sha256``)


@dataclass
class Encoded:
    """The result of one encoder pass over a batch of texts.

    ``layers`` has shape (n, num_layers + 1, dim): masked mean pooling of every hidden state.
    ``embedding`` has shape (n, dim): L2-normalised mean pooling of the last layer.
    ``sentences`` (when asked for) holds per text its (s, dim) sentence embeddings, pooled from the same
    pass's last layer, or None for a text of one sentence.
    """

    layers: np.ndarray
    embedding: np.ndarray
    truncated: list[bool]
    token_counts: list[int]
    sentences: list[np.ndarray | None] | None = None

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
            sentences=None if self.sentences is None else [self.sentences[i] for i in rows],
        )

    @staticmethod
    def concat(parts: list[Encoded]) -> Encoded:
        return Encoded(
            layers=np.concatenate([p.layers for p in parts]),
            embedding=np.concatenate([p.embedding for p in parts]),
            truncated=[t for p in parts for t in p.truncated],
            token_counts=[c for p in parts for c in p.token_counts],
            sentences=(
                None
                if any(p.sentences is None for p in parts)
                else [s for p in parts for s in p.sentences or []]
            ),
        )


def weights_sha256(model_dir: Path) -> str:
    """sha256 of the weight file in a local model folder."""
    for name in WEIGHT_FILES:
        path = model_dir / name
        if path.is_file():
            return file_sha256(path)
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


def _installed_base() -> str:
    """The base weights adapters apply onto: the installed all-MiniLM-L6-v2 package."""
    from nlp_service.config import default_encoder_path

    return default_encoder_path()


def _start_encoder_thread(threads: int | None, idents: list[int]) -> None:
    idents.append(threading.get_ident())
    if threads:
        torch.set_num_threads(threads)  # OpenMP's thread count is a per-thread setting


class Encoder:
    """A transformer with mean pooling, truncation reporting and length-sorted dynamic padding.

    ``runtime="onnx"`` runs the forward pass through ONNX Runtime (the torch model exported at start-up and
    checked against torch by :meth:`warm_up`); ``"torch"`` runs it in torch. ``quantize`` serves int8: in
    ONNX Runtime the exported graph's MatMuls quantised dynamically, per channel, except the nodes named by
    ``int8_keep_fp32`` (:mod:`nlp_service.inference.quantize`); in torch, torch's dynamic quantisation.
    """

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
        runtime: str = "torch",
        int8_keep_fp32: tuple[str, ...] = DEFAULT_KEEP_FP32,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, not {runtime!r}")
        # Every torch call of this encoder runs on one thread of its own. libgomp gives each calling thread
        # its own team of OpenMP workers, and once a process holds more workers than cores, every team's
        # workers sleep between parallel regions instead of spinning: a forward pass of ~100 regions then
        # pays a wake-up for each (measured: 115 context switches and +40% time per single-comment pass).
        # (The initializer gets a list, not a bound method: the thread must not keep the encoder alive, so
        # that a dropped encoder frees its model and its thread ends.)
        self._thread_idents: list[int] = []
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="encoder",
            initializer=_start_encoder_thread,
            initargs=(threads, self._thread_idents),
        )
        # An adapter folder (models/encoders/<version>/) is applied onto the installed base weights.
        self.adapter: Adapter | None = load_adapter(name_or_path) if is_adapter_dir(name_or_path) else None
        self.model_dir = resolve_model_dir(_installed_base() if self.adapter else name_or_path)
        base_sha256 = weights_sha256(self.model_dir)
        sha256 = base_sha256
        if self.adapter is not None:
            check_base(self.adapter, base_sha256)
            sha256 = adapted_sha256(base_sha256, self.adapter.sha256)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        # The ONNX path quantises the exported graph; its torch model stays fp32 (the warm-up reference).
        self.model = self._on_thread(self._load_model, quantize and runtime == "torch")
        config = self.model.config
        model_limit = int(getattr(config, "max_position_embeddings", 512))
        tokenizer_limit = int(getattr(self.tokenizer, "model_max_length", model_limit) or model_limit)
        self.max_length = min(max_seq_length, model_limit, tokenizer_limit)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.overhead_tokens = overhead_tokens
        self.info = EncoderInfo(
            name=name_or_path,
            sha256=sha256,
            dim=int(config.hidden_size),
            num_layers=int(config.num_hidden_layers),
            max_length=self.max_length,
            quantized=quantize,
            adapter=None if self.adapter is None else f"{self.adapter.version}@{self.adapter.sha256[:12]}",
            base_sha256=base_sha256 if self.adapter is not None else None,
        )
        self._onnx: OnnxSession | None = None
        self.int8_keep_fp32 = int8_keep_fp32
        if runtime == "onnx":
            keep = int8_keep_fp32 if quantize else None
            self._onnx = self._on_thread(self._build_onnx, threads, keep)
        log.info(
            "encoder loaded: %s sha256=%s quantized=%s runtime=%s",
            name_or_path,
            self.info.sha256[:12],
            quantize,
            self.runtime,
        )

    # -- the encoder's own thread -------------------------------------------------------------------
    @property
    def thread_ident(self) -> int | None:
        """The identifier of the thread that runs this encoder's torch work (None before its first use)."""
        return self._thread_idents[0] if self._thread_idents else None

    def _on_thread(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn`` on the encoder's own thread (directly, when already on it)."""
        if threading.get_ident() == self.thread_ident:
            return fn(*args)
        return self._executor.submit(fn, *args).result()

    # -- loading --------------------------------------------------------------------------------------
    def _load_model(self, quantize: bool, **kwargs: Any) -> Any:
        """The base model (with the adapter merged in), in eval mode; int8 in torch with ``quantize``."""
        model = AutoModel.from_pretrained(str(self.model_dir), **kwargs)
        model.eval()
        if self.adapter is not None:
            apply_adapter(model, self.adapter)
        if quantize:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return model

    def _eager_copy(self) -> Any:
        """A fresh copy of the model with eager attention (it traces cleanly)."""
        return self._load_model(False, attn_implementation="eager")

    def _build_onnx(self, threads: int | None, int8_keep_fp32: tuple[str, ...] | None) -> OnnxSession | None:
        """Export the model (a copy with eager attention, which traces cleanly) and open a session on it;
        with ``int8_keep_fp32`` (not None) on its int8 quantisation."""
        try:
            eager = self._eager_copy()
            example = self.tokenizer(list(WARM_UP_BATCHES[1]), padding=True, return_tensors="pt")
            graph = export_onnx(eager, dict(example))
            del eager
            if int8_keep_fp32 is not None:
                graph = quantize_onnx_apart(graph, exclude=int8_keep_fp32)
            return OnnxSession(graph, threads)
        except Exception as exc:  # no onnxruntime, an architecture the export does not know, ...
            log.warning("ONNX Runtime unavailable for this encoder, running it in torch: %s", exc)
            return None

    @property
    def runtime(self) -> str:
        """Where forward passes run: ``"onnx"`` (ONNX Runtime) or ``"torch"``."""
        return "onnx" if self._onnx is not None else "torch"

    @property
    def features_key(self) -> str:
        """What beyond :attr:`info` the features depend on: the runtime (and the nodes int8 keeps fp32)."""
        if self.runtime == "onnx" and self.info.quantized and self.int8_keep_fp32:
            return f"onnx|keep={','.join(self.int8_keep_fp32)}"
        return self.runtime

    def warm_up(self) -> None:
        """Run the batch shapes that are served once; ONNX Runtime is checked against torch on them.

        If its features differ from torch's, the encoder logs by how much and runs in torch.
        """
        for texts in WARM_UP_BATCHES:
            served = self.encode(list(texts))
            if self._onnx is None:
                continue
            reference = self.encode(list(texts), runtime="torch")
            if self.info.quantized:  # int8 against the fp32 torch model: the search vectors' cosine
                cosine = float(np.min(np.sum(served.embedding * reference.embedding, axis=1)))
                ok, what = cosine >= INT8_MIN_COSINE, f"cosine {cosine:.4f}"
            else:
                diff = float(np.max(np.abs(served.layers - reference.layers)))
                ok, what = diff <= ONNX_MAX_ABS_DIFF, f"max abs diff {diff:.3g}"
            if not ok:
                log.warning("ONNX Runtime differs from torch (%s); running the encoder in torch", what)
                self._onnx = None

    # -- encoding -------------------------------------------------------------------------------------
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
        runtime: str | None = None,
        sentences: bool = False,
    ) -> Encoded:
        """Encode texts in length-sorted batches; results come back in input order.

        A batch holds at most ``batch_size`` texts and, padded, at most ``max_tokens`` tokens, so short texts
        are not padded to the length of long ones. ``runtime="torch"`` bypasses ONNX Runtime. With
        ``sentences``, texts of two or more sentences also get sentence embeddings from the same pass.
        """
        if not texts:
            dim, layers = self.info.dim, self.info.num_layers + 1
            empty = Encoded(np.zeros((0, layers, dim), np.float32), np.zeros((0, dim), np.float32), [], [])
            empty.sentences = [] if sentences else None
            return empty
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
        session = None if runtime == "torch" else self._onnx  # None: torch
        merged = self._on_thread(self._encode_batches, session, texts, lengths, batches, sentences)
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[np.asarray(order)] = np.arange(len(order))
        return merged.take(inverse.tolist())

    def _encode_batches(
        self,
        session: OnnxSession | None,
        texts: list[str],
        lengths: list[int],
        batches: Iterable[list[int]],
        sentences: bool = False,
    ) -> Encoded:
        parts = [
            self._encode_batch(session, [texts[i] for i in rows], [lengths[i] for i in rows], sentences)
            for rows in batches
        ]
        return Encoded.concat(parts)

    def _pooled_layers(
        self, session: OnnxSession | None, batch: Any, hidden: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(b, L+1, d) masked means of every layer, from an ONNX Runtime session or (None) torch; with
        ``hidden``, also the (b, t, d) last-layer token states (else None)."""
        if session is not None:
            ids, mask = batch["input_ids"].numpy(), batch["attention_mask"].numpy()
            return session.run(ids, mask, hidden=True) if hidden else (session(ids, mask), None)
        with torch.inference_mode():
            out = self.model(**batch, output_hidden_states=True)
            pooled = pool_layers(torch.stack(out.hidden_states, dim=1), batch["attention_mask"])
            last = out.hidden_states[-1].numpy().astype(np.float32, copy=False) if hidden else None
        return pooled.numpy().astype(np.float32, copy=False), last

    def _encode_batch(
        self, session: OnnxSession | None, texts: list[str], lengths: list[int], sentences: bool = False
    ) -> Encoded:
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_offsets_mapping=sentences,
        )
        offsets = batch.pop("offset_mapping").numpy() if sentences else None
        pooled, hidden = self._pooled_layers(session, batch, hidden=sentences)
        last = pooled[:, -1]
        embedding = last / np.maximum(np.linalg.norm(last, axis=-1, keepdims=True), 1e-12)
        per_text: list[np.ndarray | None] | None = None
        if offsets is not None and hidden is not None:
            per_text = [sentence_embeddings(t, offsets[i], hidden[i]) for i, t in enumerate(texts)]
        return Encoded(
            layers=pooled,
            embedding=embedding.astype(np.float32, copy=False),
            truncated=[n > self.max_length for n in lengths],
            token_counts=[min(n, self.max_length) for n in lengths],
            sentences=per_text,
        )
