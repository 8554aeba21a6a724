"""A fine-tuned encoder shipped small: LoRA deltas applied at load onto the installed base weights.

An adapter folder (``models/encoders/<version>/``, written by ``python -m training encoder``) holds peft's
``adapter_config.json`` + ``adapter_model.safetensors`` (a few MB) and ``adapter.json``: the base model's
sha256 and the training record. Loading merges ``W += (alpha / r) * B @ A`` into each adapted linear layer of
the base model (no peft needed at serve time), after checking the base weights' sha256. The adapted encoder's
identity (what heads record) is the sha256 over base and adapter hashes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADAPTER_FILE = "adapter.json"
PEFT_CONFIG_FILE = "adapter_config.json"
PEFT_WEIGHTS_FILE = "adapter_model.safetensors"
_PEFT_PREFIX = "base_model.model."


class AdapterError(ValueError):
    """An adapter folder is incomplete, or made for other base weights than the installed ones."""


@dataclass(frozen=True)
class Adapter:
    """An adapter on disk: where it is, what base it needs, and its identity."""

    path: Path
    version: str
    base_sha256: str
    sha256: str  # of the LoRA weight file
    scaling: float
    record: dict[str, Any] = field(default_factory=dict, repr=False)


def is_adapter_dir(path: str | Path) -> bool:
    """Whether ``path`` is an adapter folder (rather than a full transformer folder or a hub name)."""
    return (Path(path).expanduser() / ADAPTER_FILE).is_file()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def adapted_sha256(base_sha256: str, adapter_sha256: str) -> str:
    """The adapted encoder's identity: heads trained on its features record it."""
    return hashlib.sha256(f"{base_sha256}+lora:{adapter_sha256}".encode()).hexdigest()


def load_adapter(path: str | Path) -> Adapter:
    """Read an adapter folder's metadata (the weights are read by :func:`apply_adapter`)."""
    root = Path(path).expanduser()
    missing = [n for n in (ADAPTER_FILE, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE) if not (root / n).is_file()]
    if missing:
        raise AdapterError(f"adapter folder {root} lacks {', '.join(missing)}")
    record = json.loads((root / ADAPTER_FILE).read_text())
    peft = json.loads((root / PEFT_CONFIG_FILE).read_text())
    rank, alpha = int(peft["r"]), float(peft["lora_alpha"])
    scaling = alpha / (rank**0.5 if peft.get("use_rslora") else rank)
    return Adapter(
        path=root,
        version=str(record.get("version", root.name)),
        base_sha256=str(record["base_sha256"]),
        sha256=file_sha256(root / PEFT_WEIGHTS_FILE),
        scaling=scaling,
        record=record,
    )


def check_base(adapter: Adapter, base_sha256: str) -> None:
    """Refuse base weights other than those the adapter was trained on."""
    if base_sha256 != adapter.base_sha256:
        raise AdapterError(
            f"adapter {adapter.path} was trained on base weights sha256={adapter.base_sha256}, but the "
            f"installed base has sha256={base_sha256}"
        )


def apply_adapter(model: Any, adapter: Adapter) -> int:
    """Merge the LoRA deltas into ``model`` (a transformers base model) in place; returns layers changed."""
    import torch
    from safetensors.torch import load_file

    tensors = load_file(str(adapter.path / PEFT_WEIGHTS_FILE))
    modules = dict(model.named_modules())
    changed = 0
    for key, a in tensors.items():
        if ".lora_A." not in key:
            continue
        name = key.split(".lora_A.")[0].removeprefix(_PEFT_PREFIX)
        b = tensors.get(key.replace(".lora_A.", ".lora_B."))
        layer = modules.get(name)
        if b is None or layer is None or not hasattr(layer, "weight"):
            raise AdapterError(f"adapter {adapter.path}: no layer {name!r} with lora_A and lora_B weights")
        with torch.no_grad():
            delta = (b.float() @ a.float()) * adapter.scaling
            layer.weight += delta.to(layer.weight.dtype)
        changed += 1
    if changed == 0:
        raise AdapterError(f"adapter {adapter.path} holds no LoRA weights")
    return changed
