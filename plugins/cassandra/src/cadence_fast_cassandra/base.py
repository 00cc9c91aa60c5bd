"""What every part of the Cassandra store shares: the open connection and small helpers."""

from __future__ import annotations

import abc
from typing import ClassVar

from cadence_fast.persistence.errors import StoreError
from cadence_fast.persistence.store import Store
from cadence_fast_cassandra import schema
from cadence_fast_cassandra.driver import Connection, Row
from cadence_fast_cassandra.url import CassandraURL, parse_url

#: CQL LIMIT is a 32-bit int: "no limit".
NO_LIMIT = 2**31 - 1
#: Optimistic retries of a read-modify-write under contention (domain version, lease).
CAS_RETRIES = 50


def count_of(rows: list[Row]) -> int:
    """The value of a `SELECT count(*)`."""
    return int(next(iter(rows[0].values()))) if rows else 0


class ConnectedStore(Store, abc.ABC):
    """The connection the store's parts (domains, task lists, visibility, executions) run on."""

    schemes: ClassVar[tuple[str, ...]] = ("cassandra",)
    schema_version_expected: ClassVar[int] = schema.SCHEMA_VERSION
    auto_create_schema: ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        # A bad URL surfaces from open() / the schema calls, as one clear StoreError.
        self._url_error: StoreError | None = None
        self.config: CassandraURL | None = None
        try:
            self.config = parse_url(url)
        except StoreError as e:
            self._url_error = e
        self._conn: Connection | None = None

    def _cfg(self) -> CassandraURL:
        if self.config is None:
            assert self._url_error is not None
            raise self._url_error
        return self.config

    def _c(self) -> Connection:
        if self._conn is None:
            raise StoreError("the Cassandra store is not open (call open() first)")
        return self._conn
