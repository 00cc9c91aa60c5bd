"""Apache Cassandra storage adapter for cadence-fast (`cassandra://` store URLs)."""

from cadence_fast_cassandra.store import CassandraStore

__all__ = ["CassandraStore"]
