"""The single writer of a SQLite store: one connection, one thread, group commit.

Every write of the store is a job: a function run against the writer connection.
The thread takes every job queued while the previous transaction was committing and
runs them all in ONE transaction, each inside its own SAVEPOINT: a job that raises
leaves no trace and gets its own error, the others commit together and share one
fsync. Callers' futures resolve only after COMMIT returned (acknowledged = durable).
The event loop never waits on SQLite or on fsync: it only queues jobs and receives
results through `call_soon_threadsafe`.

Read jobs (`transactional=False`) run on the same thread between transactions; the
in-memory store uses them because its one connection is the only view of the data.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from cadence_fast.persistence.errors import StoreError, Unavailable

T = TypeVar("T")

#: Upper bound of jobs merged into one transaction (keeps latency of one batch bounded).
MAX_BATCH = 1024

_STOP = object()


class _Job:
    __slots__ = ("fn", "future", "loop", "transactional")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
        transactional: bool,
    ) -> None:
        self.fn = fn
        self.future = future
        self.loop = loop
        self.transactional = transactional


def translate(exc: BaseException) -> BaseException:
    """sqlite3 errors -> the typed storage errors; everything else unchanged."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if "locked" in text or "busy" in text:
            return Unavailable(f"sqlite: {text}")
        return StoreError(f"sqlite: {text}")
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"sqlite: {exc}")
    return exc


def _deliver(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():  # the caller was cancelled; the write happened regardless
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class Writer:
    """Owns the writer connection and the thread that runs every write."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"sqlite-writer {name}", daemon=True)
        self._stopped = False
        #: Transactions committed and jobs they carried (jobs / transactions = the grouping factor).
        self.transactions = 0
        self.jobs = 0
        self._thread.start()

    def submit(
        self, fn: Callable[[sqlite3.Connection], T], *, transactional: bool = True
    ) -> asyncio.Future[T]:
        if self._stopped:
            raise StoreError("the SQLite store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop, transactional))
        return future

    async def stop(self) -> None:
        """Finish every queued job, then end the thread."""
        if self._stopped:
            return
        self._stopped = True
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    # --- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[_Job] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            try:
                outcomes = self._process(batch)
            except BaseException as e:  # noqa: BLE001 - never let the thread die with callers waiting
                err = StoreError(f"sqlite writer failed: {e!r}")
                outcomes = [(job, False, err) for job in batch]
            self._send(outcomes)

    def _process(self, batch: list[_Job]) -> list[tuple[_Job, bool, Any]]:
        writes = [job for job in batch if job.transactional]
        reads = [job for job in batch if not job.transactional]
        outcomes: list[tuple[_Job, bool, Any]] = []
        if writes:
            outcomes.extend(self._transaction(writes))
        for job in reads:
            outcomes.append(self._call(job))
        return outcomes

    def _call(self, job: _Job) -> tuple[_Job, bool, Any]:
        try:
            return job, True, job.fn(self._conn)
        except BaseException as e:  # noqa: BLE001 - delivered to the caller
            return job, False, translate(e)

    def _transaction(self, jobs: list[_Job]) -> list[tuple[_Job, bool, Any]]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            err = translate(e)
            return [(job, False, err) for job in jobs]
        outcomes: list[tuple[_Job, bool, Any]] = []
        try:
            for job in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    result = job.fn(conn)
                except BaseException as e:  # noqa: BLE001 - delivered to the caller
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back (I/O error, full disk...):
                        # nothing of this batch was written.
                        raise
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((job, False, translate(e)))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((job, True, result))
            conn.execute("COMMIT")
            self.transactions += 1
            self.jobs += len(jobs)
        except BaseException as e:  # noqa: BLE001 - the batch as a whole failed
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            err = translate(e)
            if not isinstance(err, StoreError):
                err = StoreError(f"sqlite transaction failed: {e!r}")
            return [(job, False, err) for job in jobs]
        return outcomes

    @staticmethod
    def _send(outcomes: list[tuple[_Job, bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, ok, value in outcomes:
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass
