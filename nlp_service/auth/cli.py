"""``nlp-service keys create | list | revoke``: API key management from the command line.

The CLI acts with the database's authority (whoever can run it can read the key table), so it is how the
first key is made and it may grant any scope. It works on the configured database (``NLP_DATABASE_URL`` or
the SQLite file under ``NLP_VAR_DIR``), migrating it first unless ``NLP_MIGRATE_ON_START=false``.
Every create and revoke is audit-logged with ``via=cli``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from nlp_service.auth import audit, service
from nlp_service.auth.scopes import SCOPES, parse_scopes
from nlp_service.config import Settings
from nlp_service.db import make_engine, make_sessionmaker, session_scope, upgrade
from nlp_service.errors import NotFound


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """One committed transaction on the configured database (migrated first if ``migrate_on_start``)."""
    url = settings.resolved_database_url()
    if settings.migrate_on_start:
        upgrade(url, "heads")  # "heads": works while migration branches await re-chaining
    engine = make_engine(url, pool_size=1)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _database(settings: Settings) -> str:
    return make_url(settings.resolved_database_url()).render_as_string(hide_password=True)


def _run(settings: Settings, action: Callable[[Session], int]) -> int:
    """Run ``action`` in one transaction; a database that cannot be used is a one-line error (exit 1)."""
    try:
        with _session(settings) as session:
            return action(session)
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(
            f"error: cannot use the key table in {_database(settings)}: {reason} "
            "(is NLP_DATABASE_URL right, and the database migrated: `nlp-service db upgrade`?)",
            file=sys.stderr,
        )
        return 1


def _create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        scopes = parse_scopes(args.scopes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def create(session: Session) -> int:
        row, key = service.create(db_session=session, name=args.name, scopes=list(scopes))
        session.commit()
        audit.key_event("key.created", actor_key_id=None, via="cli", key=row)
        print(key)
        print(
            f"created key {row.id} ({row.name}; scopes: {row.scopes}) in {_database(settings)}. "
            "The key above is shown only once; send it as 'Authorization: Bearer <key>'. "
            "API keys are now on.",
            file=sys.stderr,
        )
        return 0

    return _run(settings, create)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    def show(session: Session) -> int:
        rows = service.get_all(db_session=session)
        print(f"{'id':<16}  {'name':<24}  {'scopes':<40}  {'created':<20}  revoked")
        for row in rows:
            revoked = row.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if row.revoked_at else "-"
            created = row.created_at.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{row.id:<16}  {row.name[:24]:<24}  {row.scopes:<40}  {created:<20}  {revoked}")
        return 0

    return _run(settings, show)


def _revoke(settings: Settings, args: argparse.Namespace) -> int:
    def revoke(session: Session) -> int:
        try:
            row = service.revoke(db_session=session, key_id=args.key_id)
        except NotFound as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        session.commit()
        audit.key_event("key.revoked", actor_key_id=None, via="cli", key=row)
        print(f"revoked key {row.id} ({row.name}); it stops working at once")
        return 0

    return _run(settings, revoke)


BOOTSTRAP_ENV = "NLP_BOOTSTRAP_ADMIN_KEY"


def _bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    """The first admin key, once: nothing happens when any key exists already (so it is safe to run at every
    deployment). The key is ``$NLP_BOOTSTRAP_ADMIN_KEY`` if set (the operator made it), else a new one written
    to ``--out`` (mode 0600) or printed. Keys on before any replica serves: open mode is never exposed."""
    given = os.environ.get(BOOTSTRAP_ENV) or None

    def bootstrap(session: Session) -> int:
        if service.any_exist(db_session=session):
            print("keys bootstrap: API keys exist already; nothing to do", file=sys.stderr)
            return 0
        try:
            row, key = service.create(db_session=session, name=args.name, scopes=list(SCOPES), key=given)
        except ValueError as exc:
            print(f"error: {BOOTSTRAP_ENV}: {exc}", file=sys.stderr)
            return 2
        session.commit()
        audit.key_event("key.created", actor_key_id=None, via="cli", key=row)
        if given is None and args.out:
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
            where = f"written to {args.out}"
        elif given is None:
            print(key)
            where = "printed above (shown only once)"
        else:
            where = f"the key in ${BOOTSTRAP_ENV}"
        print(
            f"keys bootstrap: created admin key {row.id} ({row.name}), {where}; API keys are now on",
            file=sys.stderr,
        )
        return 0

    return _run(settings, bootstrap)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``keys`` and its subcommands on the main parser."""
    keys = sub.add_parser("keys", help="manage API keys (stored hashed; shown once at creation)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once (also the first key)")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument("--scopes", required=True, help=f"comma-separated: {','.join(SCOPES)} (or 'all')")
    create.set_defaults(func=_create)
    keys_sub.add_parser("list", help="list keys (never their secrets)").set_defaults(func=_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key: it stops working at once")
    revoke.add_argument("key_id", help="the key's id (the 16 hex characters after 'nlp_')")
    revoke.set_defaults(func=_revoke)
    boot = keys_sub.add_parser(
        "bootstrap", help=f"create the first admin key unless keys exist (${BOOTSTRAP_ENV}, or a new one)"
    )
    boot.add_argument("--name", default="bootstrap-admin", help="the key's name (default: bootstrap-admin)")
    boot.add_argument("--out", default=None, help="write a generated key to this file (mode 0600)")
    boot.set_defaults(func=_bootstrap)
