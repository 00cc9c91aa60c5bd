"""The built-in SQLite adapter: the embedded default store (one file, no other process).

URLs: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` and
``sqlite://:memory:`` (a throwaway store that lives as long as the process); option
``?synchronous=normal`` trades durability on power loss for speed (default FULL).

Schema (see `schema.py`, versioned in `schema_version`): `domains` + `domain_metadata`
(the metadata version), `shards` (range_id fencing, ack levels), `executions` (one row
per run: next_event_id, state, the engine's info blob), `execution_maps` (the mutable
state maps, one row per entry, so an update writes only what changed),
`current_executions` (workflow id -> current run), `history_batches` (one row per
committed batch of events), `transfer_tasks` / `timer_tasks` (the outbox per shard),
`task_lists` / `tasks` (matching's leases and backlog) and `executions_visibility`.

Write path (`writer.py`): one writer connection. Every write is a job; all jobs queued
while a transaction commits go into the next one (group commit: WAL, synchronous=FULL,
one fsync per group); a failed job or workflow op leaves no trace while the rest commits
(how, without a savepoint per job: writer.py). `commit` checks the shard's range_id
first and fails whole with ShardOwnershipLost. Statements run on the event loop (tens
of microseconds); COMMIT, the fsync, runs in a helper thread, so the loop never waits
on the disk and a transaction costs two GIL hand-offs however many jobs it carries.

Code: this module (URLs, connections, lifecycle, schema) assembles SQLiteStore from
one class per part of the contract: metadata.py (domains, shards), executions.py,
queues.py (history, transfer and timer tasks), matching.py (task lists) and
visibility.py; writer.py is the write path, schema.py the versioned DDL.

Read path: bounded reads (point lookups, pages of history, queues, backlog) run inline
on a read-only connection of the loop: WAL gives it the last committed state while the
writer works. Visibility queries, which may scan, run on a small reader thread pool.
The in-memory store has one connection, so its reads use it between transactions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, TypeVar
from urllib.parse import parse_qs, unquote

from cadence_fast.persistence.errors import SchemaError, StoreError
from cadence_fast.persistence.sqlite import schema
from cadence_fast.persistence.sqlite.executions import Executions
from cadence_fast.persistence.sqlite.matching import TaskLists
from cadence_fast.persistence.sqlite.metadata import DomainsAndShards
from cadence_fast.persistence.sqlite.queues import HistoryAndQueues
from cadence_fast.persistence.sqlite.visibility import Visibility
from cadence_fast.persistence.sqlite.writer import TxnState, Writer, translate

T = TypeVar("T")
log = logging.getLogger(__name__)

MEMORY = ":memory:"
#: Threads (each with its own connection) serving reads of a file store.
READ_THREADS = 2


def path_of(url: str) -> str:
    """The database path of a sqlite URL, or MEMORY."""
    if not url.lower().startswith("sqlite://"):
        raise StoreError(f"not a sqlite URL: {url!r}")
    rest = url[len("sqlite://") :].split("?", 1)[0]
    if rest in (MEMORY, "/" + MEMORY):
        return MEMORY
    if not rest.startswith("/") or not rest[1:]:
        raise StoreError(f"sqlite URL must be sqlite:///PATH or sqlite://:memory:, got {url!r}")
    return unquote(rest[1:])


#: URL query options: name -> allowed values. `synchronous` trades durability for speed
#: (Cadence-fast acknowledges only durable writes by default: FULL).
OPTIONS: dict[str, tuple[str, ...]] = {"synchronous": ("full", "extra", "normal", "off")}


def options_of(url: str) -> dict[str, str]:
    """The `?name=value` options of a sqlite URL, checked against OPTIONS."""
    query = url.split("?", 1)[1] if "?" in url else ""
    found: dict[str, str] = {"synchronous": "full"}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in OPTIONS:
            raise StoreError(f"unknown sqlite URL option {name!r} (known: {', '.join(sorted(OPTIONS))})")
        value = values[-1].lower()
        if value not in OPTIONS[name]:
            raise StoreError(
                f"sqlite URL option {name}={values[-1]!r}: expected one of {', '.join(OPTIONS[name])}"
            )
        found[name] = value
    return found


class SQLiteStore(DomainsAndShards, Executions, HistoryAndQueues, TaskLists, Visibility):
    schemes: ClassVar[tuple[str, ...]] = ("sqlite",)
    schema_version_expected: ClassVar[int] = schema.SCHEMA_VERSION
    auto_create_schema: ClassVar[bool] = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        # A bad URL surfaces from open() / the schema calls, as a StoreError the server
        # and the CLI already report in one line.
        self._url_error: StoreError | None = None
        try:
            self.path = path_of(url)
            self.options = options_of(url)
        except StoreError as e:
            self._url_error = e
            self.path, self.options = "", {"synchronous": "full"}
        self.memory = self.path == MEMORY
        self._writer: Writer | None = None
        self._conn: sqlite3.Connection | None = None  # the writer's connection
        self._readers: ThreadPoolExecutor | None = None
        self._loop_reader: sqlite3.Connection | None = None  # reads on the event loop thread
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_local = threading.local()
        self._reader_lock = threading.Lock()

    @property
    def write_stats(self) -> tuple[int, int]:
        """(transactions committed, write jobs they carried) since open: the group-commit factor."""
        if self._writer is None:
            return 0, 0
        return self._writer.transactions, self._writer.jobs

    # --- connections ----------------------------------------------------------------

    def _connect(self, *, create: bool, read_only: bool = False) -> sqlite3.Connection:
        if self.memory:
            return sqlite3.connect(
                MEMORY, isolation_level=None, check_same_thread=False, cached_statements=256
            )
        if os.path.isdir(self.path):
            raise StoreError(f"{self.path} is a directory, not a SQLite database file")
        mode = "ro" if read_only else ("rwc" if create else "rw")
        uri = f"file:{_quote_path(self.path)}?mode={mode}"
        try:
            conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, cached_statements=256
            )
        except sqlite3.Error as e:
            if not create and not os.path.exists(self.path):
                raise schema_missing(self.url) from None
            reason = str(e)
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                reason = f"directory {parent} does not exist"
            elif os.path.exists(self.path) and not os.access(self.path, os.R_OK | os.W_OK):
                reason = "permission denied"
            raise StoreError(f"cannot open SQLite database {self.path}: {reason}") from None
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            if not read_only:
                conn.execute("PRAGMA journal_mode = WAL")
                # A checkpoint leaves the WAL file at most this big (it is reused, not regrown).
                conn.execute("PRAGMA journal_size_limit = 67108864")
            conn.execute(f"PRAGMA synchronous = {self.options['synchronous'].upper()}")
            conn.execute("PRAGMA cache_size = -32768")  # 32 MB page cache per connection
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            conn.close()
            if isinstance(e, sqlite3.OperationalError):  # read-only directory, locked, I/O error...
                raise StoreError(f"cannot open SQLite database {self.path}: {e}") from None
            raise StoreError(f"{self.path} is not a readable SQLite database ({e})") from None
        return conn

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = self._connect(create=False, read_only=True)
            conn.execute("PRAGMA query_only = 1")
            self._reader_local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if self._writer is None:
            raise StoreError("the SQLite store is not open")
        return self._writer.submit(fn)

    def _txn_state(self) -> TxnState:
        if self._writer is None:
            raise StoreError("the SQLite store is not open")
        return self._writer.state

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A bounded read (point lookups, pages): run inline on the loop's read connection.

        Microseconds from the page cache; a thread hop would cost more than the read
        under a busy loop (the GIL convoy described in writer.py). WAL gives this
        connection the last committed state while the writer works.
        """
        if self._writer is None:
            raise StoreError("the SQLite store is not open")
        if self._loop_reader is None:  # in memory: the writer's connection is the database
            return self._writer.run_now(fn)
        try:
            return fn(self._loop_reader)
        except sqlite3.Error as e:
            raise translate(e) from None

    async def _read_slow(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read that may scan (visibility queries): off the loop, on the reader threads."""
        if self._writer is None:
            raise StoreError("the SQLite store is not open")
        if self._readers is None:
            return self._writer.run_now(fn)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, fn)

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._reader_conn())
        except sqlite3.Error as e:
            raise translate(e) from None

    # --- lifecycle and schema -------------------------------------------------------

    async def open(self, *, create_schema: bool = False) -> None:
        if self._url_error is not None:
            raise self._url_error
        if self._writer is not None:
            return
        conn = await asyncio.to_thread(self._open_writer, create_schema)
        self._conn = conn
        if not self.memory:
            self._loop_reader = await asyncio.to_thread(self._connect, create=False, read_only=True)
            self._loop_reader.execute("PRAGMA query_only = 1")
            self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="sqlite-reader")
        self._writer = Writer(conn, self.path, sync_commit_in_thread=not self.memory)

    def _open_writer(self, create_schema: bool) -> sqlite3.Connection:
        conn = self._connect(create=create_schema)
        try:
            version = schema.read_version(conn)
            schema.check_not_newer(version, self.path)
            if create_schema:
                schema.setup(conn, self.path)
            elif version is None:
                raise schema_missing(self.url)
            elif version < schema.SCHEMA_VERSION:
                raise schema_outdated(self.url, version)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(f"{self.path} is not a readable SQLite database ({e})") from None
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
            log.info(
                "sqlite writer: %d jobs in %d transactions, busy %.1f s",
                writer.jobs,
                writer.transactions,
                writer.busy_seconds,
            )
        readers, self._readers = self._readers, None
        if readers is not None:
            await asyncio.to_thread(readers.shutdown, True)
        with self._reader_lock:
            conns, self._reader_conns = self._reader_conns, []
        loop_reader, self._loop_reader = self._loop_reader, None
        if loop_reader is not None:
            conns.append(loop_reader)
        for c in conns:
            c.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(self._final_close, conn)

    def _final_close(self, conn: sqlite3.Connection) -> None:
        # SQLite's advice for long-lived connections: refresh query planner statistics at
        # close. Closing the last connection also folds the WAL into the database file.
        try:
            conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass
        conn.close()

    async def schema_version(self) -> int | None:
        if self._url_error is not None:
            raise self._url_error
        if self._writer is not None:
            return await self._read(schema.read_version)
        if self.memory:
            return None
        return await asyncio.to_thread(self._version_of_file)

    def _version_of_file(self) -> int | None:
        if not os.path.exists(self.path):
            return None
        return self._with_temp_conn(schema.read_version, False)

    async def setup_schema(self) -> int:
        if self._url_error is not None:
            raise self._url_error
        if self._writer is not None:
            # Already open (and set up if opened with create_schema): apply inside the writer.
            def job(conn: sqlite3.Connection) -> int:
                version = schema.read_version(conn)
                schema.check_not_newer(version, self.path)
                if version == schema.SCHEMA_VERSION:
                    return version
                raise StoreError("open the store with create_schema=True to migrate it")

            return await self._write(job)
        if self.memory:
            return schema.SCHEMA_VERSION
        return await asyncio.to_thread(self._with_temp_conn, lambda c: schema.setup(c, self.path), True)

    def _with_temp_conn(self, fn: Callable[[sqlite3.Connection], T], create: bool) -> T:
        conn = self._connect(create=create)
        try:
            return fn(conn)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a readable SQLite database ({e})") from None
        finally:
            conn.close()


def _quote_path(path: str) -> str:
    # URI filenames: '?' and '#' and '%' must be escaped; everything else passes as is.
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def schema_missing(url: str) -> SchemaError:
    return SchemaError(f"no cadence-fast schema in {url}; run `cadence-fast schema setup --store {url}`")


def schema_outdated(url: str, version: int) -> SchemaError:
    return SchemaError(
        f"the schema in {url} is version {version}, this cadence-fast needs {schema.SCHEMA_VERSION}; "
        f"run `cadence-fast schema update --store {url}`"
    )
