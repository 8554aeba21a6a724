"""``nlp-service keys create | list | revoke``: API key management from the command line."""

from __future__ import annotations

import argparse
import sys

from nlp_service.auth import service
from nlp_service.auth.scopes import SCOPES, parse_scopes
from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker, session_scope, upgrade


def _sessions(settings: Settings):  # type: ignore[no-untyped-def]
    url = settings.resolved_database_url()
    if settings.migrate_on_start:
        upgrade(url, "heads")  # "heads": works while migration branches await re-chaining
    return make_sessionmaker(make_engine(url, pool_size=1))


def _create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        scopes = parse_scopes(args.scopes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with session_scope(_sessions(settings)) as session:
        row, key = service.create(db_session=session, name=args.name, scopes=list(scopes))
    print(key)
    print(
        f"created key {row.id} ({row.name}; scopes: {row.scopes}). The key above is shown only once; "
        "send it as 'Authorization: Bearer <key>'.",
        file=sys.stderr,
    )
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    with session_scope(_sessions(settings)) as session:
        rows = service.get_all(db_session=session)
        print(f"{'id':<16}  {'name':<24}  {'scopes':<40}  {'created':<20}  revoked")
        for row in rows:
            revoked = row.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if row.revoked_at else "-"
            created = row.created_at.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{row.id:<16}  {row.name[:24]:<24}  {row.scopes:<40}  {created:<20}  {revoked}")
    return 0


def _revoke(settings: Settings, args: argparse.Namespace) -> int:
    from nlp_service.errors import NotFound

    try:
        with session_scope(_sessions(settings)) as session:
            row = service.revoke(db_session=session, key_id=args.key_id)
    except NotFound as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"revoked key {row.id} ({row.name}); it stops working at once")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``keys`` and its subcommands on the main parser."""
    keys = sub.add_parser("keys", help="manage API keys (stored hashed; shown once at creation)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument("--scopes", required=True, help=f"comma-separated: {','.join(SCOPES)} (or 'all')")
    create.set_defaults(func=_create)
    keys_sub.add_parser("list", help="list keys (never their secrets)").set_defaults(func=_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key: it stops working at once")
    revoke.add_argument("key_id", help="the key's id (the 16 hex characters after 'nlp_')")
    revoke.set_defaults(func=_revoke)
