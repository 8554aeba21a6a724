"""``python -m evaluation <subcommand> ...``; a subcommand is a module with ``add_arguments`` and ``run``."""

from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS = {
    "anomaly": "evaluation.anomaly",
    "classify": "evaluation.classify",
    "compare": "evaluation.compare",
    "incidents": "evaluation.incident_seeds",
    "int8": "evaluation.int8",
    "topics": "evaluation.topics_suite",
}


def main(argv: list[str] | None = None) -> None:
    """Parse the subcommand and hand over to its module."""
    parser = argparse.ArgumentParser(prog="python -m evaluation")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sp = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sp)
        sp.set_defaults(module=module)
    args = parser.parse_args(argv)
    args.module.run(args)


if __name__ == "__main__":
    main()
