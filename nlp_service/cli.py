"""Command line: ``nlp-service serve | ...``."""

from __future__ import annotations

import argparse
import logging
import sys

from nlp_service.config import Settings


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from nlp_service.main import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    logging.getLogger(__name__).info("starting nlp_service on %s:%s", host, port)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level, access_log=False)
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from nlp_service.worker import run_worker

    run_worker(settings, jobs=[j for j in args.jobs.split(",") if j] if args.jobs else None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nlp-service", description="Text analytics for customer feedback.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default=None, help="bind address (default: NLP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: NLP_PORT or 8000)")
    serve.set_defaults(func=_serve)
    worker = sub.add_parser("worker", help="run the background jobs (webhook delivery, detection) until SIGTERM")
    worker.add_argument("--jobs", default=None, help="comma-separated job names (default: all registered)")
    worker.set_defaults(func=_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(settings, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
