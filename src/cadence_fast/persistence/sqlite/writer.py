"""The single writer of a SQLite store: one connection, group commit, fsync off the loop.

Every write of the store is a job: a function run against the writer connection.
Jobs queued while a transaction is committing all go into the NEXT transaction: a job
that raises leaves no trace and gets its own error, the others commit together and
share one fsync. A caller's future resolves only after COMMIT returned (acknowledged =
durable).

How a failed job leaves no trace, cheaply: a batch first runs its jobs back to back with
no savepoint of their own (a SAVEPOINT + RELEASE pair per job was a third of the
statements a workflow cost). Almost every job that fails does so before it changed a
row (a condition check, a constraint error that SQLite rolled back with its statement):
`Connection.total_changes` did not move, so there is nothing to undo. A job that fails
AFTER changing rows sends the whole batch back to the `batch` savepoint opened after
BEGIN, and the batch runs again in scoped mode (`TxnState.scoped`): each job inside its
own SAVEPOINT, as it always did. Jobs are functions of the database state only, so the
second run decides exactly what a scoped first run would have.

Where the work runs, and why: the statements of a batch run on the event loop thread
(microseconds each), and only COMMIT — the fsync — runs in a helper thread. Running
the statements in a thread instead would make that thread re-acquire the GIL after
every statement, and with a busy event loop each re-acquisition waits up to the
interpreter's switch interval (5 ms): a convoy that caps a loaded server at a few
hundred transactions per second. This way a transaction costs two GIL hand-offs,
whatever it carries. The connection is never used by two threads at once: no batch
starts before the previous COMMIT returned.

Another process (or another store in this one) may hold the database's write lock:
BEGIN IMMEDIATE then fails at once (busy_timeout 0 on this connection) and the batch
is retried with backoff from the loop, never blocking it, up to `BUSY_DEADLINE`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cadence_fast.loops import LoopRef
from cadence_fast.persistence.errors import StoreError, Unavailable

T = TypeVar("T")

#: Upper bound of jobs merged into one transaction: their statements run on the loop in one
#: slice (~50 us a job), so this bounds how long one batch holds the loop.
MAX_BATCH = 128
#: How long a batch waits for another writer's lock before failing with Unavailable.
BUSY_DEADLINE = 10.0


class TxnState:
    """What the jobs of the open transaction share; reset at BEGIN and at every rollback.

    `scoped`: every job runs inside its own SAVEPOINT (the rerun of a batch in which a
    job failed after writing); a job that runs parts of itself in savepoints of its own
    (commit_job's ops) may skip them when not scoped, provided it raises whenever a part
    failed after changing rows. `shard_ranges`: shard id -> range_id read in this
    transaction (None: no such shard), so a batch checks each shard's fencing once; a job
    that writes `shards` must drop or set its entry.
    """

    __slots__ = ("scoped", "shard_ranges")

    def __init__(self) -> None:
        self.scoped = False
        self.shard_ranges: dict[int, int | None] = {}

    def reset(self, *, scoped: bool = False) -> None:
        self.scoped = scoped
        self.shard_ranges.clear()


class _Job:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.future = future


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


def _is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


class Writer:
    """Owns the writer connection; runs every write job, one transaction per batch."""

    def __init__(self, conn: sqlite3.Connection, name: str, *, sync_commit_in_thread: bool = True) -> None:
        self._conn = conn
        # COMMIT of an in-memory database does no I/O: run it inline, no thread at all.
        self._committer = (
            ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-commit {name}")
            if sync_commit_in_thread
            else None
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_ref = LoopRef()  # cadence_fast.loops: the loop without a getpid() per lookup
        self._pending: list[_Job] = []
        self._busy = False  # a batch is between BEGIN and the end of its COMMIT
        self._scheduled = False
        self._stopped = False
        self._idle: asyncio.Event | None = None
        self._busy_since = 0.0
        #: Shared by the jobs of the open transaction (see TxnState).
        self.state = TxnState()
        #: Transactions committed and jobs they carried (jobs / transactions = the grouping factor).
        self.transactions = 0
        self.jobs = 0
        #: Seconds spent with a transaction open (statements and COMMIT).
        self.busy_seconds = 0.0
        conn.execute("PRAGMA busy_timeout = 0")

    # --- the caller side --------------------------------------------------------------

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if self._stopped:
            raise StoreError("the SQLite store is closed")
        loop = self._loop_ref.get()
        if loop is not self._loop:
            # Batches live on one loop; a store may move to another loop once idle
            # (tests that run one asyncio.run after another).
            if self._busy or self._scheduled or self._pending:
                raise StoreError("a SQLite store serves one event loop at a time")
            self._loop = loop
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Job(fn, future))
        self._kick()
        return future

    def run_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on the writer connection between transactions (the in-memory store)."""
        if self._busy:
            raise RuntimeError("run_now during a transaction")
        try:
            return fn(self._conn)
        except sqlite3.Error as e:
            raise translate(e) from None

    async def stop(self) -> None:
        """Finish every queued job, then release the commit thread."""
        self._stopped = True
        if self._pending or self._busy:
            self._idle = asyncio.Event()
            await self._idle.wait()
        if self._committer is not None:
            self._committer.shutdown(wait=False)

    # --- batches ------------------------------------------------------------------------

    def _kick(self) -> None:
        # Let every coroutine runnable in this loop iteration queue its job first: they
        # then share the batch (and its fsync).
        if not self._busy and not self._scheduled and self._pending and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._start_batch)

    def _start_batch(self, first_try: float = 0.0) -> None:
        self._scheduled = False
        if self._busy or not self._pending:
            return
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self._begin_failed(e, first_try or time.monotonic())
            return
        self._busy = True
        self._busy_since = time.perf_counter()
        self.state.reset()
        jobs, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            outcomes = self._run_jobs(jobs)
        except BaseException as e:  # noqa: BLE001 - the transaction as a whole failed
            self._rollback()
            self._finish(jobs, None, e)
            return
        if self._committer is None:
            try:
                conn.execute("COMMIT")
            except BaseException as e:  # noqa: BLE001
                self._rollback()
                self._finish(jobs, None, e)
                return
            self._finish(jobs, outcomes, None)
            return
        assert self._loop is not None
        try:
            done = self._loop.run_in_executor(self._committer, self._commit)
        except BaseException as e:  # noqa: BLE001 - e.g. the loop is closing: never stay busy
            self._rollback()
            self._finish(jobs, None, e)
            return
        done.add_done_callback(lambda f: self._committed(f, jobs, outcomes))

    def _begin_failed(self, e: sqlite3.Error, first_try: float) -> None:
        assert self._loop is not None
        if _is_busy(e) and time.monotonic() - first_try < BUSY_DEADLINE:
            # Another writer holds the lock: try again shortly, without blocking the loop.
            self._scheduled = True
            self._loop.call_later(0.002, self._start_batch, first_try)
            return
        jobs, self._pending = self._pending, []
        self._finish(jobs, None, e)

    def _run_jobs(self, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        conn = self._conn
        # The rerun point if a job fails after changing rows (see the module docstring).
        conn.execute("SAVEPOINT batch")
        outcomes: list[tuple[bool, Any]] = []
        for job in jobs:
            before = conn.total_changes
            try:
                result = job.fn(conn)
            except BaseException as e:  # noqa: BLE001 - delivered to the caller
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (I/O error, full disk...):
                    # nothing of this batch was written.
                    raise
                if conn.total_changes != before:
                    # It changed rows before failing: undo the batch, run it again scoped.
                    conn.execute("ROLLBACK TO batch")
                    self.state.reset(scoped=True)
                    return self._run_jobs_scoped(jobs)
                outcomes.append((False, translate(e)))
            else:
                outcomes.append((True, result))
        return outcomes

    def _run_jobs_scoped(self, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        for job in jobs:
            conn.execute("SAVEPOINT job")
            try:
                result = job.fn(conn)
            except BaseException as e:  # noqa: BLE001 - delivered to the caller
                if not conn.in_transaction:
                    raise
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((False, translate(e)))
            else:
                conn.execute("RELEASE job")
                outcomes.append((True, result))
        return outcomes

    def _commit(self) -> None:  # in the commit thread
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        self.state.reset()
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _committed(
        self, done: asyncio.Future[None], jobs: list[_Job], outcomes: list[tuple[bool, Any]]
    ) -> None:
        exc = done.exception() if not done.cancelled() else StoreError("commit cancelled")
        if exc is not None:
            self._finish(jobs, None, exc)
        else:
            self._finish(jobs, outcomes, None)

    def _finish(
        self, jobs: list[_Job], outcomes: list[tuple[bool, Any]] | None, error: BaseException | None
    ) -> None:
        if self._busy:
            self.busy_seconds += time.perf_counter() - self._busy_since
        self._busy = False
        if outcomes is not None:
            self.transactions += 1
            self.jobs += len(jobs)
            for job, (ok, value) in zip(jobs, outcomes, strict=True):
                if job.future.done():  # the caller was cancelled; the write happened regardless
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)
        else:
            err = translate(error) if error is not None else StoreError("sqlite transaction failed")
            if not isinstance(err, StoreError):
                err = StoreError(f"sqlite transaction failed: {error!r}")
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(err)
        if self._pending:
            self._kick()
        elif self._idle is not None:
            self._idle.set()
