"""Versioned head artifacts on disk: ``<models_dir>/<task>/<version>/`` plus ``<task>/registry.json``.

``registry.json`` holds ``{"active": "v2", "history": ["v1"]}``: the active version and the versions that
were active before it (most recent last), so that :meth:`ModelRegistry.rollback` can step back. A task without
``registry.json`` uses its newest version. Versions are ``v1``, ``v2``, ... (other names sort after, as text).

``<models_dir>/encoders/<version>/`` holds fine-tuned encoders (transformer folders, not heads; see
``python -m training <task> --finetune``); it is not a task.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from nlp_service.inference.adapter import is_adapter_dir
from nlp_service.inference.encoder import EncoderInfo
from nlp_service.inference.heads import CONFIG_FILE, Head, load_head, load_head_config

REGISTRY_FILE = "registry.json"
ENCODERS_DIR = "encoders"
_VERSION_RE = re.compile(r"^v(\d+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class RegistryError(Exception):
    """A task or version is unknown, or a registry operation is impossible."""


class EncoderMismatchError(RegistryError):
    """A head was trained on another encoder's features than the one it would read at run time."""


def version_key(version: str) -> tuple[int, int, str]:
    """Sort ``v2`` before ``v10``; other names after every ``v<n>``, as text."""
    match = _VERSION_RE.match(version)
    return (0, int(match.group(1)), "") if match else (1, 0, version)


class ModelRegistry:
    """Lists, loads, promotes and rolls back head versions under one models directory."""

    def __init__(self, models_dir: Path | str) -> None:
        self.models_dir = Path(models_dir)

    # -- listing ---------------------------------------------------------------------------------------
    def tasks(self) -> list[str]:
        """Tasks with at least one version."""
        if not self.models_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.models_dir.iterdir()
            if p.is_dir() and p.name != ENCODERS_DIR and self._version_dirs(p.name)
        )

    def versions(self, task: str) -> list[str]:
        """Versions of a task, oldest first."""
        return sorted(self._version_dirs(task), key=version_key)

    def _version_dirs(self, task: str) -> list[str]:
        root = self.models_dir / task
        if task == ENCODERS_DIR or not root.is_dir():
            return []
        return [p.name for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file()]

    def path(self, task: str, version: str) -> Path:
        self._check_version(task, version)
        return self.models_dir / task / version

    def next_version(self, task: str) -> str:
        """``v<n+1>`` after the highest ``v<n>`` present (``v1`` for a new task)."""
        numbers = [int(m.group(1)) for v in self._version_dirs(task) if (m := _VERSION_RE.match(v))]
        return f"v{max(numbers, default=0) + 1}"

    def new_version_dir(self, task: str) -> tuple[str, Path]:
        """Reserve a fresh version directory (created empty)."""
        if not _NAME_RE.match(task) or task == ENCODERS_DIR:
            raise RegistryError(f"invalid task name {task!r}")
        return self._reserve(self.models_dir / task)

    def new_encoder_dir(self) -> tuple[str, Path]:
        """Reserve ``<models_dir>/encoders/v<n+1>/`` (created empty) for a fine-tuned encoder."""
        return self._reserve(self.models_dir / ENCODERS_DIR)

    def encoder_versions(self) -> list[str]:
        """Fine-tuned encoder versions (folders with a weight file or a LoRA adapter), oldest first."""
        root = self.models_dir / ENCODERS_DIR
        if not root.is_dir():
            return []
        names = [p.name for p in root.iterdir() if (p / "model.safetensors").is_file() or is_adapter_dir(p)]
        return sorted(names, key=version_key)

    @staticmethod
    def _reserve(root: Path) -> tuple[str, Path]:
        """``v<n+1>`` after the highest complete ``v<n>`` (one with a config.json) under ``root``, created.

        An empty directory left by a failed run is reused; a non-empty incomplete one is skipped.
        """
        done = root.iterdir() if root.is_dir() else iter(())
        number = max((int(m.group(1)) for p in done if (m := _VERSION_RE.match(p.name))
                      and (p / CONFIG_FILE).is_file()), default=0)  # fmt: skip
        while True:
            number += 1
            path = root / f"v{number}"
            try:
                path.mkdir(parents=True, exist_ok=False)
            except FileExistsError:
                if not any(path.iterdir()):
                    return path.name, path
                continue
            return path.name, path

    # -- active pointer -------------------------------------------------------------------------------
    def _state(self, task: str) -> dict[str, Any]:
        file = self.models_dir / task / REGISTRY_FILE
        if file.is_file():
            state = json.loads(file.read_text())
            return {"active": state.get("active"), "history": list(state.get("history", []))}
        return {"active": None, "history": []}

    def _write_state(self, task: str, state: dict[str, Any]) -> None:
        file = self.models_dir / task / REGISTRY_FILE
        tmp = file.with_name(f".{REGISTRY_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, file)

    def active_version(self, task: str) -> str:
        """The promoted version, else the newest one."""
        versions = self.versions(task)
        if not versions:
            raise RegistryError(f"no versions of task {task!r} in {self.models_dir}")
        active = self._state(task)["active"]
        return active if active in versions else versions[-1]

    def history(self, task: str) -> list[str]:
        """Versions that were active before the current one, most recent last."""
        return list(self._state(task)["history"])

    def promote(self, task: str, version: str) -> None:
        """Make ``version`` active, remembering the previously active one for :meth:`rollback`."""
        self._check_version(task, version)
        state = self._state(task)
        current = state["active"] if state["active"] in self.versions(task) else None
        if current == version:
            return
        if current is not None:
            state["history"].append(current)
        state["active"] = version
        self._write_state(task, state)

    def rollback(self, task: str) -> str:
        """Re-activate the previously active version; returns it."""
        state = self._state(task)
        versions = set(self.versions(task))
        while state["history"]:
            previous = state["history"].pop()
            if previous in versions:
                state["active"] = previous
                self._write_state(task, state)
                return previous
        raise RegistryError(f"task {task!r} has no earlier active version to roll back to")

    # -- loading ---------------------------------------------------------------------------------------
    def load(self, task: str, version: str, encoder_info: EncoderInfo | str | None = None) -> Head:
        """Load one version; with ``encoder_info`` (or a sha256) refuse a head made for another encoder."""
        path = self.path(task, version)
        if encoder_info is not None:
            expected = load_head_config(path).encoder_sha256
            actual = encoder_info if isinstance(encoder_info, str) else encoder_info.sha256
            if expected != actual:
                name = "" if isinstance(encoder_info, str) else f" ({encoder_info.name})"
                raise EncoderMismatchError(
                    f"head {task}/{version} was trained for encoder sha256={expected}, but the loaded encoder"
                    f"{name} has sha256={actual}; retrain the head for this encoder or load the matching one"
                )
        return load_head(path)

    def load_active(self, task: str, encoder_info: EncoderInfo | str | None = None) -> Head:
        """The active version of ``task`` (see :meth:`load` for the encoder check)."""
        return self.load(task, self.active_version(task), encoder_info)

    def describe(self, task: str) -> list[dict[str, Any]]:
        """One row per version: version, active flag, kind, labels, created time, metrics summary."""
        active = self.active_version(task) if self.versions(task) else None
        rows = []
        for version in self.versions(task):
            path = self.models_dir / task / version
            config = load_head_config(path)
            metrics_file = path / "metrics.json"
            metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
            rows.append(
                {
                    "version": version,
                    "active": version == active,
                    "kind": config.kind,
                    "labels": config.labels,
                    "created": config.training.get("created"),
                    "encoder_sha256": config.encoder_sha256,
                    "metrics": metrics,
                }
            )
        return rows

    def _check_version(self, task: str, version: str) -> None:
        if version not in self._version_dirs(task):
            known = ", ".join(self.versions(task)) or "none"
            raise RegistryError(f"unknown version {version!r} of task {task!r} (known: {known})")
