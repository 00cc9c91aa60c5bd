"""PostgreSQL storage adapter for cadence-fast (`postgresql://` store URLs)."""

from cadence_fast_postgres.store import PostgresStore

__all__ = ["PostgresStore"]
