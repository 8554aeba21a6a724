"""Command line: ``nlp-service serve | ...``."""

from __future__ import annotations

import argparse
import logging
import sys

from nlp_service.auth import cli as auth_cli
from nlp_service.config import Settings
from nlp_service.demo import cli as demo_cli
from nlp_service.hardening.logs import configure_logging


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from nlp_service.auth.deps import Auth
    from nlp_service.hardening.bind import UnsafeBind, check_bind
    from nlp_service.main import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    auth = Auth.from_settings(settings)
    try:
        check_bind(settings, host, keys_on=auth.store.keys_on())
    except UnsafeBind as exc:
        logging.getLogger(__name__).error("%s", exc)
        return 2
    finally:
        auth.close()
    logging.getLogger(__name__).info("starting nlp_service on %s:%s", host, port)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,  # our middleware logs each request (JSON, with its request id)
        log_config=None,  # keep the JSON, redacting handler configured in main()
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from nlp_service.worker import run_worker

    run_worker(settings, jobs=[j for j in args.jobs.split(",") if j] if args.jobs else None)
    return 0


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from nlp_service.db import upgrade

    url = settings.resolved_database_url()
    upgrade(url, args.revision)
    print(f"database at {url.split('@')[-1]} upgraded to {args.revision}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nlp-service", description="Text analytics for customer feedback.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default=None, help="bind address (default: NLP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: NLP_PORT or 8000)")
    serve.set_defaults(func=_serve)
    worker = sub.add_parser("worker", help="run the background jobs (webhook delivery, detection)")
    worker.add_argument("--jobs", default=None, help="comma-separated job names (default: all registered)")
    worker.set_defaults(func=_worker)
    auth_cli.add_parser(sub)
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_sub.add_parser("upgrade", help="apply Alembic migrations (NLP_DATABASE_URL)")
    db_upgrade.add_argument("revision", nargs="?", default="heads", help="target revision (default: heads)")
    db_upgrade.set_defaults(func=_db_upgrade)
    demo_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    if args.command in ("serve", "worker"):
        from nlp_service.memory import configure_process_memory

        configure_process_memory(
            arenas=settings.malloc_arenas,
            mmap_threshold_bytes=settings.malloc_mmap_threshold,
            trim_interval_s=settings.malloc_trim_interval_s,
        )
    return int(args.func(settings, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
