"""MySQL 8 / MariaDB 10.11 storage adapter for cadence-fast (`mysql://` store URLs)."""

from cadence_fast_mysql.store import MySQLStore

__all__ = ["MySQLStore"]
