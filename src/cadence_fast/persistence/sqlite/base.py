"""What the parts of the SQLite adapter share: how they reach the database.

`SQLiteStore` (store.py) is assembled from one class per part of the storage
contract (metadata.py, executions.py, queues.py, matching.py, visibility.py); each
part writes through `_write` (a job for the group-committing writer) and reads
through `_read` (bounded reads, on the loop) or `_read_slow` (scans, off the loop).
"""

from __future__ import annotations

import asyncio
import sqlite3
import struct
from collections.abc import Callable
from typing import TypeVar

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.sqlite.writer import TxnState
from cadence_fast.persistence.store import Store

T = TypeVar("T")

INT64 = struct.Struct(">q")


def token_int(token: bytes | None, what: str) -> int | None:
    """The integer a page token of ours carries; None for the first page."""
    if not token:
        return None
    if len(token) != INT64.size:
        raise BadRequestError(f"next_page_token is not a valid {what} page token")
    return int(INT64.unpack(token)[0])


class SQLiteBase(Store):
    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue a write job; the future resolves once its transaction is durable."""
        raise NotImplementedError

    def _txn_state(self) -> TxnState:
        """The writer's per-transaction state, for jobs that consult or maintain it."""
        raise NotImplementedError

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A bounded read against the last committed state."""
        raise NotImplementedError

    async def _read_slow(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read that may scan, run off the event loop."""
        raise NotImplementedError
