"""Synthetic incidents over many seeds: per-seed precision and recall, totals, and every miss named.

    python -m evaluation incidents --seeds 0-23 [--processes 2] [--json OUT.json]

Each seed runs ``anomaly_incidents.evaluate_incidents`` (24 scenarios with a one-region surge across topics,
8 without events; the defaults, region segments scanned), seeds in parallel processes. The totals are the
acceptance's figures: surges that came out as exactly one incident, false incidents (null scenarios' and the
rest), and the ``seed:scenario`` of each miss, which ``nlp_service.incidents.scenarios.scenario(1000 seed +
scenario)`` rebuilds, with what its counts show over the surge's hours (``surge_evidence``).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from evaluation.anomaly_incidents import evaluate_incidents, surge_evidence
from nlp_service.incidents.scenarios import scenario


def parse_seeds(text: str) -> list[int]:
    """``0-23``, ``1,5,7`` or a mix (``0-3,8``): the seeds in order, each once."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi if dash else lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a seed or range of seeds: {part!r}") from None
        if first < 0 or last < first:
            raise argparse.ArgumentTypeError(f"not a seed or range of seeds: {part!r}")
        seeds += [s for s in range(first, last + 1) if s not in seeds]
    return seeds


def seed_ranges(seeds: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0-2, 5``."""
    runs: list[list[int]] = []
    for s in seeds:
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _one(job: tuple[int, int, int]) -> dict[str, Any]:
    seed, scenarios, null = job
    return {"seed": seed, **evaluate_incidents(n_scenarios=scenarios, n_null=null, seed=seed)}


def evaluate_seeds(
    seeds: list[int], scenarios: int = 24, null: int = 8, processes: int = 2
) -> dict[str, Any]:
    """Per-seed results (in ``seeds`` order) and their totals."""
    jobs = [(s, scenarios, null) for s in seeds]
    if processes > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(processes, len(jobs))) as pool:
            per_seed = list(pool.map(_one, jobs))
    else:
        per_seed = [_one(j) for j in jobs]
    surges = sum(r["surges"] for r in per_seed)
    incidents = sum(r["incidents"] for r in per_seed)
    false = sum(r["false_incidents"] for r in per_seed)
    return {
        "seeds": seeds,
        "per_seed": per_seed,
        "surges": surges,
        "surges_as_one": sum(r["surges_as_one"] for r in per_seed),
        "incidents": incidents,
        "false_incidents": false,
        "precision": round((incidents - false) / incidents, 4) if incidents else 1.0,
        "null_scenarios": null * len(seeds),
        "false_incidents_in_null_scenarios": sum(r["false_incidents_in_null_scenarios"] for r in per_seed),
        "singles": sum(r["singles"] for r in per_seed),
        "singles_found": sum(r["singles_found"] for r in per_seed),
        "missed": [f"{r['seed']}:{i}" for r in per_seed for i in r["missed_surges"]],
        "false_at": [f"{r['seed']}:{i}" for r in per_seed for i in r["false_incident_scenarios"]],
    }


def report(t: dict[str, Any]) -> str:
    """Markdown: one row per seed, then the totals."""
    lines = [
        "| seed | precision | surge recall | surges as one incident | single recall | false incidents "
        "(null scenarios) |",
        "|---|---|---|---|---|---|",
    ]
    for r in t["per_seed"]:
        lines.append(
            f"| {r['seed']} | {r['precision']:.3f} | {r['surge_recall']:.3f} | "
            f"{r['surges_as_one']} of {r['surges']} | {r['single_recall']:.3f} | "
            f"{r['false_incidents']} ({r['false_incidents_in_null_scenarios']}) |"
        )
    share = t["surges_as_one"] / t["surges"] if t["surges"] else 0.0
    lines += [
        "",
        f"Seeds {seed_ranges(t['seeds'])}: {t['surges_as_one']} of {t['surges']} surges as one "
        f"incident ({share:.3f}); {t['incidents']} incidents, {t['false_incidents']} false (precision "
        f"{t['precision']:.3f}; {t['false_incidents_in_null_scenarios']} in the {t['null_scenarios']} null "
        f"scenarios); single events found {t['singles_found']} of {t['singles']}.",
        f"Missed surges (seed:scenario): {', '.join(t['missed']) or 'none'}.",
        f"False incidents in (seed:scenario): {', '.join(t['false_at']) or 'none'}.",
    ]
    if t["missed"]:
        lines += [
            "",
            "The missed surges' topics over the surge's hours (against the same hours of earlier weeks):",
        ]
        lines += [missed_evidence(m) for m in t["missed"]]
    return "\n".join(lines) + "\n"


def missed_evidence(missed: str) -> str:
    """One line for a missed surge (``seed:scenario``): its region, factor and hours, and each topic's
    comments over them against the earlier weeks' (``anomaly_incidents.surge_evidence``)."""
    seed, index = (int(x) for x in missed.split(":"))
    sc = scenario(seed * 1000 + index)
    surge = next(e for e in sc.events if e.kind == "surge")
    topics = "; ".join(
        f"{t.topic} {t.observed} vs {t.expected:.1f} (p {t.p_value:.1g})" for t in surge_evidence(sc)
    )
    return f"- {missed}: {surge.region} x{surge.factor:.1f}, {surge.end - surge.start} h: {topics}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI arguments of ``python -m evaluation incidents``."""
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-23"), help="e.g. 0-23 or 0,4,7")
    parser.add_argument("--scenarios", type=int, default=24, help="scenarios with a surge per seed")
    parser.add_argument("--null", type=int, default=8, help="scenarios without events per seed")
    parser.add_argument("--processes", type=int, default=2, help="seeds run in parallel")
    parser.add_argument("--json", type=Path, default=None, help="write the results JSON (and .md beside)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate, print the report, write JSON/markdown; returns the results."""
    t = evaluate_seeds(args.seeds, args.scenarios, args.null, args.processes)
    text = report(t)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(t, indent=2) + "\n")
        args.json.with_suffix(".md").write_text(text)
    return t
