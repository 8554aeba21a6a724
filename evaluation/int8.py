"""int8 fidelity: every head metric and the search proxy, fp32 against int8 ONNX Runtime, in one run.

    python -m evaluation int8 --data ../shared/datasets [--encoder PATH] [--variant output/dense ...]

The same encoder (default: the stock one) is served by ONNX Runtime in fp32 and in int8 (one column per
``--variant``: comma-separated node-name parts kept fp32; ``""`` quantises every MatMul). The registry's
active heads are applied to each column's features; a column passes when every metric is within
``--tolerance`` (0.005, i.e. 0.5 point) of fp32. Writes JSON and markdown (``--json``, ``.md`` next to it).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from nlp_service.config import REPO_ROOT
from nlp_service.inference.quantize import DEFAULT_KEEP_FP32
from nlp_service.inference.registry import ModelRegistry
from training import datasets as ds
from training.cache import add_encoder_arguments

TOLERANCE = 0.005
IGNORED = ("search.base_accuracy_at_1", "search.base_mrr_at_10")  # the same in every column


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=ds.DEFAULT_DATA_DIR, help="datasets folder")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "reports" / "int8.json", help="output JSON")
    parser.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models", help="head registry")
    add_encoder_arguments(parser)
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        help="int8 column: comma-separated node-name parts kept fp32 (repeatable; default: the service's)",
    )
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="largest allowed |int8 - fp32|")


def _keep(variant: str) -> tuple[str, ...]:
    return tuple(x for x in variant.split(",") if x)


def run(args: argparse.Namespace) -> None:
    from evaluation.classify import encoder_cache, evaluate

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.runtime = "onnx"
    started = time.perf_counter()
    registry = ModelRegistry(args.models_dir)
    variants = args.variant if args.variant is not None else [",".join(DEFAULT_KEEP_FP32)]
    fp32 = encoder_cache(args, args.encoder, quantize=False)
    base = None if args.encoder is None else encoder_cache(args, None, quantize=False)
    columns = {"fp32": evaluate(args.data, registry, fp32, topics=False, base_cache=base).results}
    for variant in variants:
        cache = encoder_cache(args, args.encoder, quantize=True, keep_fp32=_keep(variant))
        ev = evaluate(args.data, registry, cache, topics=False, base_cache=base or fp32)
        columns[f"int8[keep={variant or 'none'}]"] = ev.results
    report = markdown(columns, args.tolerance, time.perf_counter() - started)
    print(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(columns, indent=2) + "\n")
    args.json.with_suffix(".md").write_text(report)


def markdown(columns: dict[str, dict[str, float]], tolerance: float, seconds: float) -> str:
    """fp32 and each int8 column with its differences; a last row says which columns hold the bar."""
    reference = columns["fp32"]
    names = list(columns)
    lines = [
        "# int8 fidelity (ONNX Runtime, the same heads on each column's features)",
        "",
        f"Bar: every metric within {tolerance:g} of fp32. Wall time {seconds:.0f} s.",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    worst = {name: 0.0 for name in names}
    for key, value in reference.items():
        cells = [f"{value:.4f}"]
        for name in names[1:]:
            got = columns[name].get(key, float("nan"))
            delta = got - value
            if key not in IGNORED:
                worst[name] = max(worst[name], abs(delta))
            cells.append(f"{got:.4f} ({delta:+.4f})")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    verdicts = ["ref"] + [
        ("pass" if worst[n] <= tolerance else "FAIL") + f" (worst {worst[n]:.4f})" for n in names[1:]
    ]
    lines.append("| **within bar** | " + " | ".join(verdicts) + " |")
    return "\n".join(lines) + "\n"
