"""``python -m training``: train a head from a data file, reproduce the default heads, manage versions.

    python -m training sentiment --data FILE [--val FILE | --val-split 0.1] --text-col C --label-col L
    python -m training emotion ... --label-sep ,        (multi-label)
    python -m training intensity|valence ... --label-col a,b   (regression, one output per column)
    python -m training defaults [--data ../shared/datasets]
    python -m training <task>|defaults ... --finetune   (fine-tune the encoder too: a new encoders/v<n>)
    python -m training encoder --data ../shared/datasets [--steps N] [--limit N]   (multi-task LoRA adapter)
    python -m training list [task] | show <task> [version] | promote <task> <version> | rollback <task>

Bad input (missing file/column, empty or duplicate rows, unknown labels, too few examples per class, a
non-numeric regression column) prints ``error: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from nlp_service.inference.registry import ModelRegistry, RegistryError
from training import data as data_mod
from training.datasets import REPO_ROOT
from training.errors import TrainingDataError
from training.tasks import TASKS, TaskSpec

DEFAULT_REGISTRY = REPO_ROOT / "models"
EXIT_BAD_INPUT = 2


def _csv_list(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry", type=Path, default=DEFAULT_REGISTRY, help="models directory (default: models/)"
    )
    p.add_argument("--encoder", default=None, help="encoder path (default: the shipped all-MiniLM-L6-v2)")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default: var/cache/features)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_finetune(p: argparse.ArgumentParser) -> None:
    from training.finetune import FinetuneParams

    d = FinetuneParams()
    g = p.add_argument_group("fine-tuning (--finetune)")
    g.add_argument(
        "--finetune",
        action="store_true",
        help="fine-tune the encoder end to end first and register it as <registry>/encoders/v<n>",
    )
    g.add_argument("--ft-epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    g.add_argument("--ft-lr", type=float, default=d.lr, help=f"default {d.lr}")
    g.add_argument("--ft-batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    g.add_argument("--ft-max-length", type=int, default=d.max_length, help=f"default {d.max_length}")


def finetune_params(args: argparse.Namespace) -> Any:
    from training.finetune import FinetuneParams

    return FinetuneParams(
        epochs=args.ft_epochs,
        lr=args.ft_lr,
        batch_size=args.ft_batch_size,
        max_length=args.ft_max_length,
        seed=args.seed,
    )


def base_encoder(args: argparse.Namespace) -> str:
    from nlp_service.config import default_encoder_path

    return str(args.encoder or default_encoder_path())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for spec in TASKS.values():
        p = sub.add_parser(spec.name, help=f"train a {spec.name} head: {spec.description}")
        p.add_argument(
            "--data", type=Path, required=True, help="training file (.csv, .tsv, .jsonl, .parquet)"
        )
        group = p.add_mutually_exclusive_group()
        group.add_argument("--val", type=Path, help="validation file (same columns)")
        group.add_argument(
            "--val-split", type=float, default=0.1, help="held-out fraction when no --val (0.1)"
        )
        p.add_argument("--text-col", default="text")
        p.add_argument(
            "--label-col",
            default="label",
            help="label column"
            + (" (comma-separated columns: one output each)" if spec.kind == "regression" else ""),
        )
        if spec.kind != "regression":
            default = ",".join(spec.labels or ())
            p.add_argument("--labels", type=_csv_list, default=None, help=f"label set (default: {default})")
        if spec.kind == "sigmoid":
            p.add_argument("--label-sep", default=",", help="separator of labels within a cell (default ',')")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument(
            "--drop-duplicates", action="store_true", help="drop exact duplicate rows instead of failing"
        )
        p.add_argument("--epochs", type=int, default=None)
        p.add_argument("--hidden", type=lambda v: [int(x) for x in _csv_list(v)], default=None,
                       help="hidden layer sizes, e.g. 256 or '' for a linear head")  # fmt: skip
        p.add_argument("--layers", type=lambda v: tuple(int(x) for x in _csv_list(v)), default=None,
                       help="pooled encoder layers used as features, e.g. 1,2,3,4,5,6")  # fmt: skip
        p.add_argument("--promote", action="store_true", help="make the new version active")
        _add_common(p)
        _add_finetune(p)
        p.set_defaults(handler=cmd_train, spec=spec)

    p = sub.add_parser("defaults", help="reproduce every shipped default head from the benchmark datasets")
    p.add_argument("--data", type=Path, default=None, help="datasets folder (default: ../shared/datasets)")
    p.add_argument("--only", type=_csv_list, default=None, help="comma-separated subset of tasks")
    p.add_argument("--seed", type=int, default=0)
    _add_common(p)
    _add_finetune(p)
    p.set_defaults(handler=cmd_defaults)

    _add_encoder_command(sub)

    p = sub.add_parser("list", help="tasks and versions in the registry")
    p.add_argument("task", nargs="?")
    p.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    p.set_defaults(handler=cmd_list)
    p = sub.add_parser("show", help="config and metrics of a version (default: the active one)")
    p.add_argument("task")
    p.add_argument("version", nargs="?")
    p.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    p.set_defaults(handler=cmd_show)
    p = sub.add_parser("promote", help="make a version active")
    p.add_argument("task")
    p.add_argument("version")
    p.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    p.set_defaults(handler=cmd_promote)
    p = sub.add_parser("rollback", help="re-activate the previously active version")
    p.add_argument("task")
    p.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    p.set_defaults(handler=cmd_rollback)
    return parser


def _add_encoder_command(sub: Any) -> None:
    from training.encoder_mtl import EncoderTrainParams

    d = EncoderTrainParams()
    p = sub.add_parser(
        "encoder", help="multi-task LoRA fine-tuning of the encoder: a new encoders/v<n> adapter"
    )
    p.add_argument("--data", type=Path, default=None, help="datasets folder (default: ../shared/datasets)")
    p.add_argument(
        "--registry", type=Path, default=DEFAULT_REGISTRY, help="models directory (default: models/)"
    )
    for name, help_text in (
        ("steps", "optimiser steps"),
        ("batch_size", "texts per step"),
        ("lr", "LoRA learning rate"),
        ("head_lr", "task heads' learning rate"),
        ("max_length", "tokens per text"),
        ("lora_r", "LoRA rank"),
        ("lora_alpha", "LoRA alpha"),
        ("distill", "weight of (1 - cosine) to the base model's search vector"),
        ("eval_every", "validate every this many steps"),
        ("seed", "random seed"),
    ):
        default = getattr(d, name)
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, dest=name, type=type(default), default=default, help=f"{help_text} ({default})")
    p.add_argument(
        "--limit", type=int, default=None, help="at most this many rows per task and split (subset)"
    )
    p.add_argument("--device", default=d.device, help="auto (cuda when available), cpu, cuda")
    p.add_argument("--base", type=Path, default=None, help="base model folder (default: the installed one)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_encoder)


def cmd_encoder(args: argparse.Namespace) -> int:
    from training import datasets as ds
    from training.encoder_mtl import EncoderTrainParams, train_encoder

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    fields = EncoderTrainParams.__dataclass_fields__
    params = EncoderTrainParams(**{k: v for k, v in vars(args).items() if k in fields})
    result = train_encoder(
        data_dir=args.data or ds.DEFAULT_DATA_DIR,
        registry=ModelRegistry(args.registry),
        base_dir=args.base or Path(_installed_encoder()),
        params=params,
        command="python -m training " + shlex.join(args.argv),
        progress=not args.quiet,
    )
    print(f"wrote encoder adapter {result.version} to {result.path} ({result.seconds:.0f} s)")
    print(json.dumps(result.history[-1] if result.history else {}, indent=2))
    return 0


def _installed_encoder() -> str:
    from nlp_service.config import default_encoder_path

    return default_encoder_path()


def make_cache(args: argparse.Namespace) -> Any:
    """A feature cache whose encoder is only loaded on the first cache miss."""
    from training.cache import DEFAULT_CACHE_DIR, FeatureCache

    def factory() -> Any:
        from nlp_service.config import default_encoder_path
        from nlp_service.inference.encoder import Encoder

        return Encoder(args.encoder or default_encoder_path(), threads=args.threads)

    cache_dir = None if args.no_cache else (args.cache_dir or DEFAULT_CACHE_DIR)
    return FeatureCache(factory, cache_dir)


def load_task_data(spec: TaskSpec, args: argparse.Namespace, path: Path) -> data_mod.Data:
    """Read and validate one file for a task."""
    table = data_mod.read_table(path)
    labels = getattr(args, "labels", None) or (list(spec.labels) if spec.labels else None)
    if spec.kind == "softmax":
        return data_mod.classification(
            table, args.text_col, args.label_col, labels=labels, drop_duplicates=args.drop_duplicates
        )
    if spec.kind == "sigmoid":
        return data_mod.multilabel(
            table, args.text_col, args.label_col, sep=args.label_sep, labels=labels,
            drop_duplicates=args.drop_duplicates,
        )  # fmt: skip
    return data_mod.regression(
        table, args.text_col, _csv_list(args.label_col), drop_duplicates=args.drop_duplicates
    )


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from training.pipeline import names_of, split_validation, train_head

    spec: TaskSpec = args.spec
    train = load_task_data(spec, args, args.data)
    files = [args.data]
    if args.val is not None:
        val = load_task_data(spec, args, args.val)
        files.append(args.val)
        if names_of(val) != names_of(train):
            raise TrainingDataError(
                f"{args.val}: label set {names_of(val)} differs from the training file's {names_of(train)}"
            )
    else:
        train, val = split_validation(train, args.val_split, args.seed)
    if spec.kind != "regression" and spec.labels is None:
        spec = replace(spec, labels=tuple(names_of(train)))
    if args.layers is not None:
        from nlp_service.inference.heads import FeatureSpec

        spec = replace(spec, features=FeatureSpec(layers=args.layers))
    params = replace(spec.params, seed=args.seed)
    if args.epochs is not None:
        params = replace(params, epochs=args.epochs)
    if args.hidden is not None:
        params = replace(params, hidden=args.hidden)
    info = data_mod.fingerprint(files)
    info.update(dropped_duplicates=train.dropped_duplicates + val.dropped_duplicates)
    common: dict[str, Any] = dict(
        spec=spec,
        train=train,
        val=val,
        registry=ModelRegistry(args.registry),
        params=params,
        data_info=info,
        command="python -m training " + shlex.join(args.argv),
        promote=True if args.promote else None,
        progress=not args.quiet,
    )
    if args.finetune:
        from training.finetune import finetune_and_train

        outcome, ft = finetune_and_train(
            **common,
            base_encoder=base_encoder(args),
            ft_params=finetune_params(args),
            cache_dir=make_cache(args).cache_dir,
            threads=args.threads,
        )
        print(f"wrote encoder {ft.version} to {ft.path} (sha256 {ft.sha256[:12]}, {ft.seconds:.0f} s)")
    else:
        outcome = train_head(**common, cache=make_cache(args))
    print(f"wrote {spec.name} {outcome.version} to {outcome.path}")
    print(json.dumps(outcome.metrics["validation"], indent=2))
    return 0


def cmd_defaults(args: argparse.Namespace) -> int:
    from training.defaults import train_defaults

    results = train_defaults(
        data_dir=args.data,
        registry=ModelRegistry(args.registry),
        cache=make_cache(args),
        seed=args.seed,
        only=args.only,
        progress=not args.quiet,
        finetune=finetune_params(args) if args.finetune else None,
        base_encoder=base_encoder(args) if args.finetune else None,
        threads=args.threads,
    )
    for task, outcome in results.items():
        print(f"{task}: {outcome.version} -> {json.dumps(outcome.metrics, default=str)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    registry = ModelRegistry(args.registry)
    tasks = [args.task] if args.task else registry.tasks()
    if args.task and not registry.versions(args.task):
        raise RegistryError(f"no versions of task {args.task!r} in {registry.models_dir}")
    for task in tasks:
        for row in registry.describe(task):
            mark = "*" if row["active"] else " "
            print(f"{mark} {task:<10} {row['version']:<6} {row['kind']:<10} {row['created'] or ''}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    registry = ModelRegistry(args.registry)
    version = args.version or registry.active_version(args.task)
    path = registry.path(args.task, version)
    out = {
        "task": args.task,
        "version": version,
        "active": version == registry.active_version(args.task),
        "history": registry.history(args.task),
        "path": str(path),
        "config": json.loads((path / "config.json").read_text()),
        "metrics": json.loads((path / "metrics.json").read_text())
        if (path / "metrics.json").is_file()
        else {},
    }
    print(json.dumps(out, indent=2))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    ModelRegistry(args.registry).promote(args.task, args.version)
    print(f"{args.task}: active version is now {args.version}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    version = ModelRegistry(args.registry).rollback(args.task)
    print(f"{args.task}: rolled back to {version}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except (TrainingDataError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
