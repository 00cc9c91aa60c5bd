"""The entry point module (`cadence_fast.storage` group): registers the Cassandra adapter."""

from __future__ import annotations

from cadence_fast.persistence.hookspecs import hookimpl


@hookimpl
def cadence_fast_storage_adapters() -> list[type]:
    # Imported here so that listing adapters never pays for loading cassandra-driver.
    from cadence_fast_cassandra.store import CassandraStore

    return [CassandraStore]
