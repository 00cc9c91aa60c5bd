"""The entry point module (`cadence_fast.storage` group): registers the MySQL adapter."""

from __future__ import annotations

from cadence_fast.persistence.hookspecs import hookimpl


@hookimpl
def cadence_fast_storage_adapters() -> list[type]:
    from cadence_fast_mysql.store import MySQLStore

    return [MySQLStore]
