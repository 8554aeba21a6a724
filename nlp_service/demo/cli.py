"""``nlp-service demo generate | load``."""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from typing import Any

from nlp_service.config import Settings


def _generate(settings: Settings, args: argparse.Namespace) -> int:
    from nlp_service.demo.generator import DemoConfig, Incident, write_jsonl

    start = date.fromisoformat(args.start)
    incident = None
    if args.incident:
        day = (
            date.fromisoformat(args.incident_day)
            if args.incident_day
            else start.fromordinal(start.toordinal() + (args.days * 3) // 4)
        )
        incident = Incident(day=day, region=args.incident_region, count=args.incident_count)
    cfg = DemoConfig(n=args.n, seed=args.seed, start=start, days=args.days, incident=incident)
    n = write_jsonl(cfg, Path(args.out))
    print(f"wrote {n} comments to {args.out} ({cfg.start} + {cfg.days} days, seed {cfg.seed})")
    if incident:
        print(
            f"incident: {incident.count} x {incident.topic!r} complaints in {incident.region} "
            f"on {incident.day}"
        )
    return 0


def _load(settings: Settings, args: argparse.Namespace) -> int:
    from nlp_service.demo.loader import LoadError, load

    try:
        result = load(
            Path(args.file),
            args.url,
            batch_size=args.batch,
            concurrency=args.concurrency,
            api_key=args.api_key,
        )
    except LoadError as exc:
        print(f"error: {exc}")
        return 1
    rate = result.sent / result.seconds if result.seconds else 0.0
    print(
        f"sent {result.sent} comments in {result.seconds:.1f}s ({rate:.0f}/s): {result.created} created, "
        f"{result.existing} already stored, {result.retries} retries"
    )
    return 0


def add_parser(sub: Any) -> None:
    """Register ``demo generate`` and ``demo load`` on the main parser's subcommands."""
    demo = sub.add_parser("demo", help="generate demo comments or load them into a running service")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    gen = demo_sub.add_parser("generate", help="write seeded, realistic comments as JSONL")
    gen.add_argument("--n", type=int, default=5000, help="number of regular comments (default 5000)")
    gen.add_argument("--out", required=True, help="output JSONL file")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--start", default="2024-03-01", help="first day (YYYY-MM-DD)")
    gen.add_argument("--days", type=int, default=28)
    gen.add_argument("--incident", action="store_true", help="inject a tax-on-full-price complaint burst")
    gen.add_argument("--incident-day", default=None, help="day of the incident (default: 3/4 into the range)")
    gen.add_argument("--incident-region", default="eu-west")
    gen.add_argument("--incident-count", type=int, default=60)
    gen.set_defaults(func=_generate)
    ld = demo_sub.add_parser("load", help="POST a JSONL file to /v1/comments in batches (retries 429/503)")
    ld.add_argument("file")
    ld.add_argument("--url", default="http://127.0.0.1:8000")
    ld.add_argument("--batch", type=int, default=100)
    ld.add_argument("--concurrency", type=int, default=4, help="batches in flight at once (default 4)")
    ld.add_argument("--api-key", default=os.environ.get("NLP_API_KEY"), help="default: $NLP_API_KEY")
    ld.set_defaults(func=_load)
