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
one fsync per group), each job and each workflow op inside its own SAVEPOINT so a failed
condition leaves no trace while the rest commits. `commit` checks the shard's range_id
first and fails whole with ShardOwnershipLost. Statements run on the event loop (tens
of microseconds); COMMIT, the fsync, runs in a helper thread, so the loop never waits
on the disk and a transaction costs two GIL hand-offs however many jobs it carries.

Read path: bounded reads (point lookups, pages of history, queues, backlog) run inline
on a read-only connection of the loop: WAL gives it the last committed state while the
writer works. Visibility queries, which may scan, run on a small reader thread pool.
The in-memory store has one connection, so its reads use it between transactions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, unquote

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.errors import (
    AlreadyExists,
    ConditionFailed,
    NotFound,
    SchemaError,
    ShardOwnershipLost,
    StoreError,
)
from cadence_fast.persistence.records import (
    CreateWorkflow,
    CurrentExecutionRecord,
    DomainRecord,
    ExecutionRecord,
    HistoryBatch,
    ShardRecord,
    TaskListRecord,
    TaskListTask,
    TimerTask,
    TransferTask,
    UpdateWorkflow,
    VisibilityRecord,
)
from cadence_fast.persistence.sqlite import schema
from cadence_fast.persistence.sqlite.executions import (
    SELECT_CURRENT,
    UPSERT_VISIBILITY,
    commit_job,
    current_record,
    visibility_params,
)
from cadence_fast.persistence.sqlite.visibility import count_workflows_sql, list_workflows_sql
from cadence_fast.persistence.sqlite.writer import Writer, translate
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.visibility_query import VisibilityQuery

T = TypeVar("T")
log = logging.getLogger(__name__)

MEMORY = ":memory:"
#: Threads (each with its own connection) serving reads of a file store.
READ_THREADS = 2

_INT64 = struct.Struct(">q")

_SHARD_COLUMNS = "shard_id, range_id, owner, transfer_ack_level, timer_ack_level, data, updated_at"
_DOMAIN_COLUMNS = "domain_id, name, status, data, notification_version"
_TASK_LIST_COLUMNS = "domain_id, name, task_type, kind, range_id, ack_level, data, updated_at"
_VISIBILITY_COLUMNS = (
    "domain_id, workflow_id, run_id, workflow_type, start_time, execution_time, task_list, close_time, "
    "close_status, history_length, is_cron, memo, search_attributes, update_time"
)


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


def _token_int(token: bytes | None, what: str) -> int | None:
    if not token:
        return None
    if len(token) != _INT64.size:
        raise BadRequestError(f"next_page_token is not a valid {what} page token")
    return int(_INT64.unpack(token)[0])


def _shard(row: Sequence[Any]) -> ShardRecord:
    return ShardRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _domain(row: Sequence[Any]) -> DomainRecord:
    return DomainRecord(row[0], row[1], row[2], row[3], row[4])


def _task_list(row: Sequence[Any]) -> TaskListRecord:
    return TaskListRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])


def _visibility(row: Sequence[Any]) -> VisibilityRecord:
    return VisibilityRecord(
        domain_id=row[0],
        workflow_id=row[1],
        run_id=row[2],
        workflow_type=row[3],
        start_time=row[4],
        execution_time=row[5],
        task_list=row[6],
        close_time=row[7],
        close_status=row[8],
        history_length=row[9],
        is_cron=bool(row[10]),
        memo=row[11],
        search_attributes=json.loads(row[12]) if row[12] else {},
        update_time=row[13],
    )


class SQLiteStore(Store):
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

    # --- domains --------------------------------------------------------------------

    @staticmethod
    def _bump_metadata(conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "UPDATE domain_metadata SET notification_version = notification_version + 1 WHERE id = 1 "
            "RETURNING notification_version"
        ).fetchall()
        return int(row[0][0])

    async def create_domain(self, domain: DomainRecord) -> int:
        def job(conn: sqlite3.Connection) -> int:
            taken = conn.execute(
                "SELECT domain_id, name FROM domains WHERE domain_id = ? OR name = ?",
                (domain.domain_id, domain.name),
            ).fetchone()
            if taken is not None:
                what = f"name {domain.name!r}" if taken[1] == domain.name else f"id {domain.domain_id}"
                raise AlreadyExists(f"a domain with {what} already exists")
            version = self._bump_metadata(conn)
            conn.execute(
                f"INSERT INTO domains ({_DOMAIN_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (domain.domain_id, domain.name, domain.status, bytes(domain.data), version),
            )
            return version

        version = await self._write(job)
        domain.notification_version = version
        return version

    async def get_domain(self, *, domain_id: str | None = None, name: str | None = None) -> DomainRecord:
        if (domain_id is None) == (name is None):
            raise ValueError("get_domain needs exactly one of domain_id or name")
        column, value = ("domain_id", domain_id) if domain_id is not None else ("name", name)
        row = await self._read(
            lambda c: c.execute(
                f"SELECT {_DOMAIN_COLUMNS} FROM domains WHERE {column} = ?", (value,)
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"domain {column.replace('_', ' ')} {value!r} does not exist")
        return _domain(row)

    async def update_domain(self, domain: DomainRecord) -> int:
        def job(conn: sqlite3.Connection) -> int:
            version = self._bump_metadata(conn)
            cur = conn.execute(
                "UPDATE domains SET status = ?, data = ?, notification_version = ? WHERE domain_id = ?",
                (domain.status, bytes(domain.data), version, domain.domain_id),
            )
            if cur.rowcount != 1:
                raise NotFound(f"domain id {domain.domain_id!r} does not exist")
            return version

        version = await self._write(job)
        domain.notification_version = version
        return version

    async def delete_domain(self, domain_id: str) -> None:
        def job(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM domains WHERE domain_id = ?", (domain_id,)).rowcount != 1:
                raise NotFound(f"domain id {domain_id!r} does not exist")
            self._bump_metadata(conn)

        await self._write(job)

    async def list_domains(
        self, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[DomainRecord], bytes | None]:
        after = next_page_token.decode("utf-8", "surrogatepass") if next_page_token else None
        limit = page_size if page_size > 0 else -1

        def read(conn: sqlite3.Connection) -> list[Any]:
            if after is None:
                return conn.execute(
                    f"SELECT {_DOMAIN_COLUMNS} FROM domains ORDER BY name LIMIT ?", (limit + (limit > 0),)
                ).fetchall()
            return conn.execute(
                f"SELECT {_DOMAIN_COLUMNS} FROM domains WHERE name > ? ORDER BY name LIMIT ?",
                (after, limit + (limit > 0)),
            ).fetchall()

        rows = await self._read(read)
        domains = [_domain(r) for r in rows]
        if page_size > 0 and len(domains) > page_size:
            domains = domains[:page_size]
            return domains, domains[-1].name.encode("utf-8", "surrogatepass")
        return domains, None

    async def get_metadata_version(self) -> int:
        row = await self._read(
            lambda c: c.execute("SELECT notification_version FROM domain_metadata WHERE id = 1").fetchone()
        )
        return int(row[0])

    # --- shards ---------------------------------------------------------------------

    async def get_or_create_shard(self, shard_id: int) -> ShardRecord:
        def job(conn: sqlite3.Connection) -> Any:
            conn.execute(
                f"INSERT OR IGNORE INTO shards ({_SHARD_COLUMNS}) VALUES (?, 0, '', 0, 0, x'', ?)",
                (shard_id, time.time_ns()),
            )
            return conn.execute(
                f"SELECT {_SHARD_COLUMNS} FROM shards WHERE shard_id = ?", (shard_id,)
            ).fetchone()

        row = await self._read(
            lambda c: c.execute(
                f"SELECT {_SHARD_COLUMNS} FROM shards WHERE shard_id = ?", (shard_id,)
            ).fetchone()
        )
        if row is None:
            row = await self._write(job)
        return _shard(row)

    async def update_shard(self, shard: ShardRecord, previous_range_id: int) -> None:
        def job(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE shards SET range_id = ?, owner = ?, transfer_ack_level = ?, timer_ack_level = ?, data = ?, "
                "updated_at = ? WHERE shard_id = ? AND range_id = ?",
                (
                    shard.range_id,
                    shard.owner,
                    shard.transfer_ack_level,
                    shard.timer_ack_level,
                    bytes(shard.data),
                    shard.updated_at,
                    shard.shard_id,
                    previous_range_id,
                ),
            )
            if cur.rowcount != 1:
                row = conn.execute(
                    "SELECT range_id FROM shards WHERE shard_id = ?", (shard.shard_id,)
                ).fetchone()
                now = "no such shard" if row is None else f"range_id is {row[0]}"
                raise ShardOwnershipLost(
                    shard.shard_id, f"shard {shard.shard_id}: {now}, this owner expected {previous_range_id}"
                )

        await self._write(job)

    # --- executions -----------------------------------------------------------------

    async def commit(
        self, shard_id: int, range_id: int, ops: Sequence[CreateWorkflow | UpdateWorkflow]
    ) -> list[BaseException | None]:
        ops = list(ops)
        try:
            return await self._write(lambda conn: commit_job(conn, shard_id, range_id, ops))
        except (ConditionFailed, AlreadyExists) as e:
            if len(ops) == 1:  # a lone op's condition failed (see commit_job)
                return [e]
            raise

    async def get_execution(
        self, shard_id: int, domain_id: str, workflow_id: str, run_id: str
    ) -> ExecutionRecord:
        key = (shard_id, domain_id, workflow_id, run_id)

        def read(conn: sqlite3.Connection) -> tuple[Any, list[Any]]:
            row = conn.execute(
                "SELECT next_event_id, state, close_status, create_request_id, start_time, info FROM executions "
                "WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ?",
                key,
            ).fetchone()
            if row is None:
                return None, []
            maps = conn.execute(
                "SELECT kind, key, value FROM execution_maps "
                "WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ? ORDER BY kind, key",
                key,
            ).fetchall()
            return row, maps

        row, map_rows = await self._read(read)
        if row is None:
            raise NotFound(f"run {run_id} of workflow {workflow_id!r} does not exist")
        maps: dict[int, dict[str, bytes]] = {}
        for kind, k, v in map_rows:
            maps.setdefault(kind, {})[k] = v
        return ExecutionRecord(
            domain_id, workflow_id, run_id, row[0], row[1], row[2], row[3], row[4], row[5], maps
        )

    async def get_current_execution(
        self, shard_id: int, domain_id: str, workflow_id: str
    ) -> CurrentExecutionRecord:
        row = await self._read(
            lambda c: c.execute(SELECT_CURRENT, (shard_id, domain_id, workflow_id)).fetchone()
        )
        if row is None:
            raise NotFound(f"workflow {workflow_id!r} has no current run")
        return current_record(row)

    async def delete_execution(self, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> None:
        key = (shard_id, domain_id, workflow_id, run_id)
        where = "WHERE shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ?"

        def job(conn: sqlite3.Connection) -> None:
            for table in ("executions", "execution_maps", "history_batches", "current_executions"):
                conn.execute(f"DELETE FROM {table} {where}", key)

        await self._write(job)

    # --- history --------------------------------------------------------------------

    async def read_history(
        self,
        shard_id: int,
        domain_id: str,
        workflow_id: str,
        run_id: str,
        min_event_id: int,
        max_event_id: int,
        page_size: int,
        next_page_token: bytes | None,
    ) -> tuple[list[HistoryBatch], bytes | None]:
        after = _token_int(next_page_token, "history")
        key = (shard_id, domain_id, workflow_id, run_id)
        limit = page_size + 1 if page_size > 0 else -1
        where = "shard_id = ? AND domain_id = ? AND workflow_id = ? AND run_id = ?"

        def read(conn: sqlite3.Connection) -> list[Any]:
            lower_params: tuple[Any, ...]
            if after is not None:
                lower_sql, lower_params = "first_event_id > ?", (after,)
            else:
                # Seek to the batch holding min_event_id: the last one starting at or before it.
                lower_sql = (
                    "first_event_id >= COALESCE((SELECT MAX(first_event_id) FROM history_batches "
                    f"WHERE {where} AND first_event_id <= ?), 0)"
                )
                lower_params = (*key, min_event_id)
            return conn.execute(
                f"SELECT first_event_id, last_event_id, data FROM history_batches WHERE {where} AND {lower_sql} "
                "AND last_event_id >= ? AND first_event_id < ? ORDER BY first_event_id LIMIT ?",
                (*key, *lower_params, min_event_id, max_event_id, limit),
            ).fetchall()

        rows = await self._read(read)
        batches = [HistoryBatch(r[0], r[1], r[2]) for r in rows]
        if page_size > 0 and len(batches) > page_size:
            batches = batches[:page_size]
            return batches, _INT64.pack(batches[-1].first_event_id)
        return batches, None

    # --- queues (the outbox) ----------------------------------------------------------

    async def get_transfer_tasks(
        self, shard_id: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TransferTask]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT task_id, task_type, domain_id, workflow_id, run_id, data, visibility_time FROM transfer_tasks "
                "WHERE shard_id = ? AND task_id > ? AND task_id <= ? ORDER BY task_id LIMIT ?",
                (shard_id, min_task_id, max_task_id, limit if limit > 0 else -1),
            ).fetchall()
        )
        return [TransferTask(*r) for r in rows]

    async def get_timer_tasks(
        self, shard_id: int, min_time: int, min_task_id: int, max_time: int, limit: int
    ) -> list[TimerTask]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT visibility_time, task_id, task_type, domain_id, workflow_id, run_id, data FROM timer_tasks "
                "WHERE shard_id = ? AND (visibility_time, task_id) >= (?, ?) AND visibility_time < ? "
                "ORDER BY visibility_time, task_id LIMIT ?",
                (shard_id, min_time, min_task_id, max_time, limit if limit > 0 else -1),
            ).fetchall()
        )
        return [TimerTask(*r) for r in rows]

    async def complete_transfer_task(self, shard_id: int, task_id: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM transfer_tasks WHERE shard_id = ? AND task_id = ?", (shard_id, task_id)
                )
                and None
            )
        )

    async def complete_transfer_tasks(self, shard_id: int, up_to_task_id: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM transfer_tasks WHERE shard_id = ? AND task_id <= ?",
                    (shard_id, up_to_task_id),
                )
                and None
            )
        )

    async def complete_timer_task(self, shard_id: int, visibility_time: int, task_id: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM timer_tasks WHERE shard_id = ? AND visibility_time = ? AND task_id = ?",
                    (shard_id, visibility_time, task_id),
                )
                and None
            )
        )

    async def complete_timer_tasks(self, shard_id: int, before_time: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM timer_tasks WHERE shard_id = ? AND visibility_time < ?",
                    (shard_id, before_time),
                )
                and None
            )
        )

    # --- task lists (matching) --------------------------------------------------------

    async def lease_task_list(self, domain_id: str, name: str, task_type: int, kind: int) -> TaskListRecord:
        def job(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                f"INSERT INTO task_lists ({_TASK_LIST_COLUMNS}) VALUES (?, ?, ?, ?, 1, 0, x'', ?) "
                "ON CONFLICT (domain_id, name, task_type) DO UPDATE SET range_id = range_id + 1, "
                f"updated_at = excluded.updated_at RETURNING {_TASK_LIST_COLUMNS}",
                (domain_id, name, task_type, kind, time.time_ns()),
            ).fetchall()[0]

        return _task_list(await self._write(job))

    async def update_task_list(self, task_list: TaskListRecord) -> None:
        t = task_list

        def job(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE task_lists SET ack_level = ?, data = ?, kind = ?, updated_at = ? "
                "WHERE domain_id = ? AND name = ? AND task_type = ? AND range_id = ?",
                (
                    t.ack_level,
                    bytes(t.data),
                    t.kind,
                    t.updated_at or time.time_ns(),
                    t.domain_id,
                    t.name,
                    t.task_type,
                    t.range_id,
                ),
            )
            if cur.rowcount != 1:
                _task_list_condition(conn, t.domain_id, t.name, t.task_type, t.range_id)

        await self._write(job)

    async def list_task_lists(self, domain_id: str) -> list[TaskListRecord]:
        rows = await self._read(
            lambda c: c.execute(
                f"SELECT {_TASK_LIST_COLUMNS} FROM task_lists WHERE domain_id = ? ORDER BY name, task_type",
                (domain_id,),
            ).fetchall()
        )
        return [_task_list(r) for r in rows]

    async def delete_task_list(self, domain_id: str, name: str, task_type: int, range_id: int) -> None:
        def job(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "DELETE FROM task_lists WHERE domain_id = ? AND name = ? AND task_type = ? AND range_id = ?",
                (domain_id, name, task_type, range_id),
            )
            if cur.rowcount != 1:
                _task_list_condition(conn, domain_id, name, task_type, range_id)
            conn.execute(
                "DELETE FROM tasks WHERE domain_id = ? AND name = ? AND task_type = ?",
                (domain_id, name, task_type),
            )

        await self._write(job)

    async def create_tasks(
        self, domain_id: str, name: str, task_type: int, range_id: int, tasks: Sequence[TaskListTask]
    ) -> None:
        rows = [
            (domain_id, name, task_type, t.task_id, bytes(t.data), t.created_time, t.expiry_time)
            for t in tasks
        ]

        def job(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT range_id FROM task_lists WHERE domain_id = ? AND name = ? AND task_type = ?",
                (domain_id, name, task_type),
            ).fetchone()
            if row is None or row[0] != range_id:
                _task_list_condition(conn, domain_id, name, task_type, range_id)
            conn.executemany(
                "INSERT OR REPLACE INTO tasks (domain_id, name, task_type, task_id, data, created_time, expiry_time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

        await self._write(job)

    async def get_tasks(
        self, domain_id: str, name: str, task_type: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TaskListTask]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT task_id, data, created_time, expiry_time FROM tasks WHERE domain_id = ? AND name = ? "
                "AND task_type = ? AND task_id > ? AND task_id <= ? ORDER BY task_id LIMIT ?",
                (domain_id, name, task_type, min_task_id, max_task_id, limit if limit > 0 else -1),
            ).fetchall()
        )
        return [TaskListTask(*r) for r in rows]

    async def complete_task(self, domain_id: str, name: str, task_type: int, task_id: int) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM tasks WHERE domain_id = ? AND name = ? AND task_type = ? AND task_id = ?",
                    (domain_id, name, task_type, task_id),
                )
                and None
            )
        )

    async def complete_tasks_less_than(self, domain_id: str, name: str, task_type: int, task_id: int) -> int:
        return await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM tasks WHERE domain_id = ? AND name = ? AND task_type = ? AND task_id <= ?",
                    (domain_id, name, task_type, task_id),
                ).rowcount
            )
        )

    async def count_tasks(self, domain_id: str, name: str, task_type: int, min_task_id: int) -> int:
        row = await self._read(
            lambda c: c.execute(
                "SELECT count(*) FROM tasks WHERE domain_id = ? AND name = ? AND task_type = ? AND task_id > ?",
                (domain_id, name, task_type, min_task_id),
            ).fetchone()
        )
        return int(row[0])

    # --- visibility -------------------------------------------------------------------

    async def upsert_visibility(self, record: VisibilityRecord) -> None:
        params = visibility_params(record)
        await self._write(lambda c: c.execute(UPSERT_VISIBILITY, params) and None)

    async def delete_visibility(self, domain_id: str, run_id: str) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM executions_visibility WHERE domain_id = ? AND run_id = ?",
                    (domain_id, run_id),
                )
                and None
            )
        )

    async def list_workflows(
        self, domain_id: str, query: VisibilityQuery, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[VisibilityRecord], bytes | None]:
        limit = page_size + 1 if page_size > 0 else -1
        cq, sql, params = list_workflows_sql(_VISIBILITY_COLUMNS, domain_id, query, limit, next_page_token)
        rows = await self._read_slow(lambda c: c.execute(sql, params).fetchall())
        records = [_visibility(r) for r in rows]
        if page_size > 0 and len(records) > page_size:
            records = records[:page_size]
            return records, cq.page_token(records[-1])
        return records, None

    async def count_workflows(self, domain_id: str, query: VisibilityQuery) -> int:
        sql, params = count_workflows_sql(domain_id, query)
        row = await self._read_slow(lambda c: c.execute(sql, params).fetchone())
        return int(row[0])


def _task_list_condition(
    conn: sqlite3.Connection, domain_id: str, name: str, task_type: int, range_id: int
) -> None:
    row = conn.execute(
        "SELECT range_id FROM task_lists WHERE domain_id = ? AND name = ? AND task_type = ?",
        (domain_id, name, task_type),
    ).fetchone()
    now = "does not exist" if row is None else f"has range_id {row[0]}"
    raise ConditionFailed(f"task list {name!r} (type {task_type}) {now}, expected range_id {range_id}")


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
