"""`cadence-fast schema setup|update|version --store URL`: the database objects of a store.

Generic over adapters: the command finds the adapter by the URL's scheme (as the server
does) and calls its `setup_schema()` / `schema_version()`, which work on a store that is
not open. Server databases (PostgreSQL, MySQL) are set up here before the first
`server start`; the embedded SQLite store also sets itself up on first open.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from cadence_fast.config import DEFAULT_DB

if TYPE_CHECKING:
    from cadence_fast.persistence.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("schema", help="create, migrate or inspect a store's database schema")
    gsub = group.add_subparsers(dest="schema_command", metavar="COMMAND")
    for name, help_text, fn in (
        ("setup", "create the database (if the user may) and the schema, or migrate it; idempotent", _setup),
        ("update", "migrate an existing schema to this version of cadence-fast", _update),
        ("version", "print the schema version in the database and the one this code expects", _version),
    ):
        cmd = gsub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument(
            "--store",
            metavar="URL",
            default=os.environ.get("CADENCE_FAST_STORE", f"sqlite:///{DEFAULT_DB}"),
            help="store URL: sqlite:///PATH, postgresql://USER@HOST/DB, mysql://USER@HOST/DB "
            "(env CADENCE_FAST_STORE; default %(default)s)",
        )
        if name == "version":
            cmd.add_argument("--json", action="store_true", help="print JSON for scripts")
        cmd.set_defaults(handler=_handler(fn))


def _handler(fn: Callable[[Store, argparse.Namespace], Coroutine[Any, Any, int]]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        # The store layer (and the adapter plugins it discovers) loads only when a command runs.
        import asyncio

        from cadence_fast.persistence.errors import StoreError
        from cadence_fast.persistence.registry import create_store

        try:
            store = create_store(args.store)
        except ValueError as e:
            print(f"cadence-fast: {e}", file=sys.stderr)
            return 2
        try:
            return asyncio.run(fn(store, args))
        except StoreError as e:
            print(f"cadence-fast: {e}", file=sys.stderr)
            return 1
        except OSError as e:
            print(f"cadence-fast: {args.store}: {e.strerror or e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    return handler


async def _setup(store: Store, args: argparse.Namespace) -> int:
    from cadence_fast.persistence.sqlcommon import redact_url

    before = await store.schema_version()
    after = await store.setup_schema()
    if before == after:
        print(f"schema version {after} already in place ({redact_url(args.store)})")
    elif before is None:
        print(f"schema version {after} created ({redact_url(args.store)})")
    else:
        print(f"schema migrated from version {before} to {after} ({redact_url(args.store)})")
    return 0


async def _update(store: Store, args: argparse.Namespace) -> int:
    from cadence_fast.persistence.sqlcommon import redact_url

    before = await store.schema_version()
    if before is None:
        print(
            f"cadence-fast: no schema in {args.store} to update; create it with "
            f"`cadence-fast schema setup --store {args.store}`",
            file=sys.stderr,
        )
        return 1
    after = await store.setup_schema()
    if before == after:
        print(f"schema version {after} is up to date ({redact_url(args.store)})")
    else:
        print(f"schema migrated from version {before} to {after} ({redact_url(args.store)})")
    return 0


async def _version(store: Store, args: argparse.Namespace) -> int:
    found = await store.schema_version()
    expected = store.schema_version_expected
    if found is None:
        status = "no schema (run `cadence-fast schema setup`)"
    elif found < expected:
        status = "outdated (run `cadence-fast schema update`)"
    elif found > expected:
        status = "newer than this cadence-fast (upgrade cadence-fast)"
    else:
        status = "up to date"
    if args.json:
        print(json.dumps({"database": found, "code": expected, "status": status.split(" (")[0]}))
    else:
        print(f"database schema version: {found if found is not None else 'none'}")
        print(f"code schema version:     {expected}")
        print(f"status:                  {status}")
    return 0
