"""Registers the SQLite adapter through the same hook as every third-party adapter."""

from __future__ import annotations

from cadence_fast.persistence.hookspecs import hookimpl


@hookimpl
def cadence_fast_storage_adapters() -> list[type]:
    from cadence_fast.persistence.sqlite.store import SQLiteStore

    return [SQLiteStore]
