"""The Cassandra adapter: cassandra-driver, LWT batches on the shard partition.

URL: ``cassandra://[user[:password]@]host1[:port][,host2...]/keyspace[?replication_factor=3&datacenter=dc1]``
(see `url.py`). The schema (`schema.py`) is set up with ``cadence-fast schema setup
--store URL``, which also creates the keyspace; the server never creates it on its own.

How the contract maps onto Cassandra (DESIGN §6, server-brief §3):

- Fencing and atomicity: every workflow write of a shard is ONE LOGGED batch on the
  shard's partition of ``executions`` carrying LWT conditions (`cql.py`): the shard
  row's ``range_id``, the run's ``next_event_id``, the current row's run. Reads and
  writes are LOCAL_QUORUM, conditions LOCAL_SERIAL.
- Group commit: a conditional batch applies or fails as a whole, so `commit` runs each
  op as its own batch and maps each batch's outcome to its op. Ops naming the same
  workflow run one after the other in call order (a later op sees an earlier one);
  ops of different workflows run concurrently. Every batch carries the range check,
  so an op of a fenced host never lands; a ShardOwnershipLost from any op is raised
  for the call (ops that applied before the range moved were written by the owner of
  the time, exactly as if they had been an earlier call).
- History: appended to the run's ``history_node`` partition before the batch, under a
  fresh transaction id, and visible only once the batch's HISTORY_TXN rows confirm
  it (`cql.py`, "transaction ids").
- Visibility rows of a committed op are written right after its batch (their tables
  are other partitions); a failure there is logged, not returned: the workflow write
  is already durable, as with Cadence's asynchronous visibility.
- Outcome unknown (a write timeout of a conditional batch): the op gets `Unavailable`;
  its conditions make the caller's retry (after reloading) safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import struct
import time
from collections.abc import Coroutine, Sequence
from typing import Any, ClassVar

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.errors import (
    AlreadyExists,
    ConditionFailed,
    NotFound,
    SchemaError,
    ShardOwnershipLost,
    StoreError,
    Unavailable,
)
from cadence_fast.persistence.records import (
    CreateMode,
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
    WorkflowState,
)
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.visibility_query import VisibilityQuery
from cadence_fast_cassandra import cql, schema
from cadence_fast_cassandra.cql import KEY, QUEUE_PREFIX, RowType
from cadence_fast_cassandra.driver import Connection, Row, applied
from cadence_fast_cassandra.url import CassandraURL, parse_url
from cadence_fast_cassandra.visibility import plan_query

log = logging.getLogger("cadence_fast.cassandra")

_INT64 = struct.Struct(">q")
#: CQL LIMIT is a 32-bit int: "no limit".
_NO_LIMIT = 2**31 - 1
#: Optimistic retries of a read-modify-write under contention (domain version, lease).
_CAS_RETRIES = 50

_SHARD_COLS = "range_id, owner, transfer_ack_level, timer_ack_level, shard_data, shard_updated_at"
_EXEC_COLS = "next_event_id, state, close_status, create_request_id, start_time, info, " + ", ".join(
    cql.MAP_COLUMNS.values()
)
_CURRENT_COLS = (
    "current_run_id, current_state, current_close_status, current_create_request_id, current_start_time"
)
_DOMAIN_COLS = "domain_id, name, status, data, notification_version"
_TL_KEY = "domain_id = ? AND task_list_name = ? AND task_list_type = ?"
_TL_ROW = _TL_KEY + " AND row_type = 0 AND task_id = 0"
_TL_COLS = "range_id, kind, ack_level, list_data, updated_at"
_VIS_COLS = (
    "domain_id, run_id, workflow_id, workflow_type, start_time, execution_time, task_list, close_time, "
    "close_status, history_length, is_cron, memo, search_attributes, update_time"
)
_VIS_TABLE_KEY = {"visibility_by_start": "start_time", "visibility_by_close": "close_time"}


def _token_int(token: bytes | None, what: str) -> int | None:
    if not token:
        return None
    if len(token) != _INT64.size:
        raise BadRequestError(f"next_page_token is not a valid {what} page token")
    return int(_INT64.unpack(token)[0])


def _shard(shard_id: int, r: Row) -> ShardRecord:
    return ShardRecord(
        shard_id=shard_id,
        range_id=int(r["range_id"] or 0),
        owner=r["owner"] or "",
        transfer_ack_level=int(r["transfer_ack_level"] or 0),
        timer_ack_level=int(r["timer_ack_level"] or 0),
        data=r["shard_data"] or b"",
        updated_at=int(r["shard_updated_at"] or 0),
    )


def _current(r: Row) -> CurrentExecutionRecord:
    return CurrentExecutionRecord(
        run_id=r["current_run_id"],
        state=int(r["current_state"] or 0),
        close_status=int(r["current_close_status"] or 0),
        create_request_id=r["current_create_request_id"] or "",
        start_time=int(r["current_start_time"] or 0),
    )


def _domain(r: Row) -> DomainRecord:
    return DomainRecord(
        domain_id=r["domain_id"],
        name=r["name"],
        status=int(r["status"] or 0),
        data=r["data"] or b"",
        notification_version=int(r["notification_version"] or 0),
    )


def _task_list(domain_id: str, name: str, task_type: int, r: Row) -> TaskListRecord:
    return TaskListRecord(
        domain_id=domain_id,
        name=name,
        task_type=task_type,
        kind=int(r["kind"] or 0),
        range_id=int(r["range_id"] or 0),
        ack_level=int(r["ack_level"] or 0),
        data=r["list_data"] or b"",
        updated_at=int(r["updated_at"] or 0),
    )


def _visibility(r: Row) -> VisibilityRecord:
    return VisibilityRecord(
        domain_id=r["domain_id"],
        workflow_id=r["workflow_id"],
        run_id=r["run_id"],
        workflow_type=r["workflow_type"] or "",
        start_time=int(r["start_time"] or 0),
        execution_time=int(r["execution_time"] or 0),
        task_list=r["task_list"] or "",
        close_time=None if r["close_time"] is None else int(r["close_time"]),
        close_status=None if r["close_status"] is None else int(r["close_status"]),
        history_length=int(r["history_length"] or 0),
        is_cron=bool(r["is_cron"]),
        memo=r["memo"] or b"",
        search_attributes=json.loads(r["search_attributes"]) if r["search_attributes"] else {},
        update_time=int(r["update_time"] or 0),
    )


def _count(rows: list[Row]) -> int:
    return int(next(iter(rows[0].values()))) if rows else 0


def schema_message(found: int | None, expected: int, shown: str) -> SchemaError | None:
    """SchemaError naming the command that fixes a missing, outdated or newer schema (None: all good)."""
    if found is None:
        return SchemaError(
            f"no cadence-fast schema in {shown}; create it with `cadence-fast schema setup --store {shown}`"
        )
    if found < expected:
        return SchemaError(
            f"schema version {found} in {shown} is older than this cadence-fast's {expected}; "
            f"migrate it with `cadence-fast schema update --store {shown}`"
        )
    if found > expected:
        return SchemaError(
            f"schema version {found} in {shown} is newer than this cadence-fast (it knows {expected}); "
            "upgrade cadence-fast"
        )
    return None


class CassandraStore(Store):
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

    # --- lifecycle and schema -----------------------------------------------------------

    def _cfg(self) -> CassandraURL:
        if self.config is None:
            assert self._url_error is not None
            raise self._url_error
        return self.config

    def _c(self) -> Connection:
        if self._conn is None:
            raise StoreError("the Cassandra store is not open (call open() first)")
        return self._conn

    async def open(self, *, create_schema: bool = False) -> None:
        cfg = self._cfg()
        if self._conn is not None:
            return
        conn = await Connection.connect(cfg, None)
        try:
            if create_schema:
                await self._setup_on(conn)
            else:
                problem = schema_message(
                    await self._read_version(conn, cfg.keyspace), schema.SCHEMA_VERSION, cfg.redacted()
                )
                if problem is not None:
                    raise problem
                await asyncio.to_thread(conn.session.set_keyspace, cfg.keyspace)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _keyspace_tables(self, conn: Connection, keyspace: str) -> set[str] | None:
        """The keyspace's table names, None if there is no such keyspace."""
        found = await conn.execute(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?", (keyspace,)
        )
        if not found:
            return None
        rows = await conn.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?", (keyspace,)
        )
        return {r["table_name"] for r in rows}

    async def _read_version(self, conn: Connection, keyspace: str) -> int | None:
        tables = await self._keyspace_tables(conn, keyspace)
        if tables is None or "schema_version" not in tables:
            return None
        rows = await conn.execute(f"SELECT version FROM {keyspace}.schema_version WHERE id = 1")
        return int(rows[0]["version"]) if rows and rows[0]["version"] is not None else None

    async def schema_version(self) -> int | None:
        cfg = self._cfg()
        if self._conn is not None:
            return await self._read_version(self._conn, cfg.keyspace)
        conn = await Connection.connect(cfg, None)
        try:
            return await self._read_version(conn, cfg.keyspace)
        finally:
            await conn.close()

    async def setup_schema(self) -> int:
        """Create the keyspace (if the user may) and the tables, or migrate them; idempotent.

        Run it from one place at a time: Cassandra resolves concurrent CREATE TABLE of one
        name badly (two table ids), which is why the server never does this on its own.
        """
        if self._conn is not None:
            return await self._setup_on(self._conn)
        conn = await Connection.connect(self._cfg(), None)
        try:
            return await self._setup_on(conn)
        finally:
            await conn.close()

    async def _setup_on(self, conn: Connection) -> int:
        """setup_schema on a connection; leaves the session in the keyspace."""
        cfg = self._cfg()
        tables = await self._keyspace_tables(conn, cfg.keyspace)
        if tables is None:
            try:
                await conn.execute_plain(schema.create_keyspace(cfg.keyspace, cfg.replication()))
            except Unavailable:
                raise
            except StoreError as e:
                raise SchemaError(
                    f"keyspace {cfg.keyspace!r} does not exist and could not be created ({e}); "
                    "create it, then run `cadence-fast schema setup` again"
                ) from None
            log.info("created keyspace %s with replication %s", cfg.keyspace, cfg.replication())
        found = await self._read_version(conn, cfg.keyspace)
        if found is not None and found > schema.SCHEMA_VERSION:
            raise schema_message(found, schema.SCHEMA_VERSION, cfg.redacted()) or SchemaError("newer schema")
        if conn.session.keyspace != cfg.keyspace:
            await asyncio.to_thread(conn.session.set_keyspace, cfg.keyspace)
        for version in range((found or 0) + 1, schema.SCHEMA_VERSION + 1):
            for statement in schema.MIGRATIONS[version]:
                await conn.execute_plain(statement)
        if (found or 0) < schema.SCHEMA_VERSION:
            await conn.execute(
                "INSERT INTO schema_version (id, version, updated_at) VALUES (1, ?, ?)",
                (schema.SCHEMA_VERSION, time.time_ns()),
            )
        return schema.SCHEMA_VERSION

    # --- domains ------------------------------------------------------------------------------

    async def _metadata_version(self, serial: bool = True) -> int | None:
        rows = await self._c().execute(
            "SELECT metadata_version FROM domains_by_name WHERE domains_partition = 0 LIMIT 1",
            serial_read=serial,
        )
        return None if not rows or rows[0]["metadata_version"] is None else int(rows[0]["metadata_version"])

    @staticmethod
    def _bump(version: int | None) -> tuple[str, tuple[Any, ...]]:
        """The static-column statement of every domain write: version + 1, IF it is still `version`."""
        return (
            "UPDATE domains_by_name SET metadata_version = ? WHERE domains_partition = 0 IF metadata_version = ?",
            ((version or 0) + 1, version),
        )

    async def _name_of(self, domain_id: str) -> str:
        rows = await self._c().execute(
            "SELECT name FROM domains WHERE domain_id = ?", (domain_id,), serial_read=True
        )
        if not rows or rows[0]["name"] is None:
            raise NotFound(f"domain id {domain_id!r} not found")
        return str(rows[0]["name"])

    async def _by_name(self, name: str, serial: bool = False) -> Row | None:
        rows = await self._c().execute(
            f"SELECT {_DOMAIN_COLS} FROM domains_by_name WHERE domains_partition = 0 AND name = ?",
            (name,),
            serial_read=serial,
        )
        return rows[0] if rows and rows[0]["domain_id"] is not None else None

    async def create_domain(self, domain: DomainRecord) -> int:
        c = self._c()
        d = domain
        # The id first (its own partition): a taken id fails before anything else is written.
        if not applied(
            await c.execute(
                "INSERT INTO domains (domain_id, name) VALUES (?, ?) IF NOT EXISTS", (d.domain_id, d.name)
            )
        ):
            raise AlreadyExists(f"domain id {d.domain_id!r} already exists")
        try:
            for _ in range(_CAS_RETRIES):
                version = await self._metadata_version()
                new = (version or 0) + 1
                rows = await c.batch(
                    [
                        (
                            "INSERT INTO domains_by_name (domains_partition, name, domain_id, status, data, "
                            "notification_version) VALUES (0, ?, ?, ?, ?, ?) IF NOT EXISTS",
                            (d.name, d.domain_id, d.status, d.data, new),
                        ),
                        self._bump(version),
                    ]
                )
                if applied(rows):
                    d.notification_version = new
                    return new
                if await self._by_name(d.name, serial=True) is not None:
                    raise AlreadyExists(f"domain name {d.name!r} already exists")
                # Else another domain write bumped the version meanwhile: read it again.
            raise Unavailable("domain metadata version: too much contention, try again")
        except Unavailable:
            raise  # the batch may have applied: keep the id
        except BaseException:
            # Release the id (only if it is still ours).
            try:
                await c.execute("DELETE FROM domains WHERE domain_id = ? IF name = ?", (d.domain_id, d.name))
            except StoreError:
                log.warning("could not release domain id %s after a failed create", d.domain_id)
            raise

    async def get_domain(self, *, domain_id: str | None = None, name: str | None = None) -> DomainRecord:
        if domain_id is not None:
            row = await self._by_name(await self._name_of(domain_id))
            if row is None or row["domain_id"] != domain_id:
                raise NotFound(f"domain id {domain_id!r} not found")
            return _domain(row)
        if name is None:
            raise ValueError("get_domain needs domain_id or name")
        row = await self._by_name(name)
        if row is None:
            raise NotFound(f"domain name {name!r} not found")
        return _domain(row)

    async def _domain_write(
        self, domain_id: str, statement: tuple[str, tuple[Any, ...]] | None, d: DomainRecord | None
    ) -> int:
        """An update (d given) or delete of the domain's name row, with the version bump, as one LWT batch."""
        name = await self._name_of(domain_id)
        for _ in range(_CAS_RETRIES):
            version = await self._metadata_version()
            new = (version or 0) + 1
            if d is not None:
                stmt: tuple[str, tuple[Any, ...]] = (
                    "UPDATE domains_by_name SET status = ?, data = ?, notification_version = ? "
                    "WHERE domains_partition = 0 AND name = ? IF domain_id = ?",
                    (d.status, d.data, new, name, domain_id),
                )
            else:
                assert statement is not None
                stmt = statement
            if applied(await self._c().batch([stmt, self._bump(version)])):
                return new
            row = await self._by_name(name, serial=True)
            if row is None or row["domain_id"] != domain_id:
                raise NotFound(f"domain id {domain_id!r} not found")
        raise Unavailable("domain metadata version: too much contention, try again")

    async def update_domain(self, domain: DomainRecord) -> int:
        version = await self._domain_write(domain.domain_id, None, domain)
        domain.notification_version = version
        return version

    async def delete_domain(self, domain_id: str) -> None:
        name = await self._name_of(domain_id)
        await self._domain_write(
            domain_id,
            (
                "DELETE FROM domains_by_name WHERE domains_partition = 0 AND name = ? IF domain_id = ?",
                (name, domain_id),
            ),
            None,
        )
        await self._c().execute("DELETE FROM domains WHERE domain_id = ?", (domain_id,))

    async def list_domains(
        self, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[DomainRecord], bytes | None]:
        after = None
        if next_page_token:
            if next_page_token[:1] != b"s":
                raise BadRequestError("next_page_token is not a valid list_domains page token")
            after = next_page_token[1:].decode("utf-8")
        limit = page_size if page_size > 0 else _NO_LIMIT - 1
        if after is None:
            rows = await self._c().execute(
                f"SELECT {_DOMAIN_COLS} FROM domains_by_name WHERE domains_partition = 0 LIMIT ?",
                (limit + 1,),
            )
        else:
            rows = await self._c().execute(
                f"SELECT {_DOMAIN_COLS} FROM domains_by_name WHERE domains_partition = 0 AND name > ? LIMIT ?",
                (after, limit + 1),
            )
        # A partition holding only its static version row reads back as one row without a name.
        domains = [_domain(r) for r in rows if r["name"] is not None and r["domain_id"] is not None]
        if len(domains) > limit:
            domains = domains[:limit]
            return domains, b"s" + domains[-1].name.encode("utf-8")
        return domains, None

    async def get_metadata_version(self) -> int:
        return await self._metadata_version(serial=False) or 0

    # --- shards -------------------------------------------------------------------------------

    async def _read_shard(self, shard_id: int, serial: bool) -> ShardRecord | None:
        rows = await self._c().execute(
            f"SELECT {_SHARD_COLS} FROM executions WHERE {KEY}", cql.shard_key(shard_id), serial_read=serial
        )
        return _shard(shard_id, rows[0]) if rows and rows[0]["range_id"] is not None else None

    async def get_or_create_shard(self, shard_id: int) -> ShardRecord:
        found = await self._read_shard(shard_id, serial=True)
        if found is not None:
            return found
        # Two hosts may race to create it: the loser's insert does not apply; both read the winner's row.
        await self._c().execute(
            f"INSERT INTO executions ({cql.KEY_COLUMNS}, {_SHARD_COLS}) VALUES ({', '.join(['?'] * 13)}) IF NOT EXISTS",
            (*cql.shard_key(shard_id), 0, "", 0, 0, b"", time.time_ns()),
        )
        found = await self._read_shard(shard_id, serial=True)
        if found is None:
            raise Unavailable(f"shard {shard_id}: created but not readable yet")
        return found

    async def update_shard(self, shard: ShardRecord, previous_range_id: int) -> None:
        s = shard
        rows = await self._c().execute(
            "UPDATE executions SET range_id = ?, owner = ?, transfer_ack_level = ?, timer_ack_level = ?, "
            f"shard_data = ?, shard_updated_at = ? WHERE {KEY} IF range_id = ?",
            (
                s.range_id,
                s.owner,
                s.transfer_ack_level,
                s.timer_ack_level,
                s.data,
                s.updated_at,
                *cql.shard_key(s.shard_id),
                previous_range_id,
            ),
        )
        if not applied(rows):
            stored = rows[0].get("range_id") if rows else None
            raise ShardOwnershipLost(
                s.shard_id,
                f"shard {s.shard_id}: ownership lost (range_id is {'absent' if stored is None else stored}, "
                f"expected {previous_range_id})",
            )

    # --- executions ---------------------------------------------------------------------------

    async def commit(
        self, shard_id: int, range_id: int, ops: Sequence[CreateWorkflow | UpdateWorkflow]
    ) -> list[BaseException | None]:
        self._c()
        results: list[BaseException | None] = [None] * len(ops)
        lost: list[ShardOwnershipLost] = []

        async def run_in_order(indexes: list[int]) -> None:
            for n, i in enumerate(indexes):
                try:
                    results[i] = await self._apply(shard_id, range_id, ops[i])
                except ShardOwnershipLost as e:
                    lost.append(e)
                    return
                if isinstance(results[i], Unavailable):
                    # Its outcome is unknown: later ops of the workflow are not attempted.
                    for j in indexes[n + 1 :]:
                        results[j] = Unavailable(
                            f"not attempted: an earlier op of the workflow failed: {results[i]}"
                        )
                    return

        await asyncio.gather(*(run_in_order(group) for group in _groups(ops)))
        if lost:
            raise lost[0]
        return results

    async def _apply(
        self, shard_id: int, range_id: int, op: CreateWorkflow | UpdateWorkflow
    ) -> BaseException | None:
        """One op as one conditional batch; its error (ConditionFailed, AlreadyExists, ...) or None."""
        c = self._c()
        txn_id = secrets.randbits(63) or 1
        try:
            statements = cql.op_statements(shard_id, range_id, op, txn_id)
        except cql.ImpossibleCondition as e:
            return ConditionFailed(str(e))
        except ValueError as e:
            return StoreError(str(e))
        appends = cql.history_appends(op, txn_id)
        try:
            if appends:
                await asyncio.gather(*(c.execute(q, p) for q, p in appends))
            rows = await c.batch(statements)
        except Unavailable as e:
            return e  # the history nodes stay: the batch may have applied and confirmed them
        except StoreError as e:
            await self._cleanup(op, txn_id)
            return e
        if applied(rows):
            await self._write_visibility(op)
            return None
        await self._cleanup(op, txn_id)
        error = await self._why_not_applied(shard_id, range_id, op)
        if isinstance(error, ShardOwnershipLost):
            raise error
        return error

    async def _cleanup(self, op: CreateWorkflow | UpdateWorkflow, txn_id: int) -> None:
        """Delete the history nodes of a batch that surely failed (best effort: they are invisible anyway)."""
        deletes = cql.history_cleanup(op, txn_id)
        if deletes:
            try:
                await asyncio.gather(*(self._c().execute(q, p) for q, p in deletes))
            except StoreError as e:
                log.debug("leaving orphan history nodes of txn %d: %s", txn_id, e)

    async def _write_visibility(self, op: CreateWorkflow | UpdateWorkflow) -> None:
        records = [op.visibility]
        if isinstance(op, UpdateWorkflow) and op.new_run is not None:
            records.append(op.new_run.visibility)
        for record in records:
            if record is None:
                continue
            try:
                await self.upsert_visibility(record)
            except StoreError as e:
                log.warning("visibility of run %s not recorded (the workflow write is): %s", record.run_id, e)

    async def _read_current(
        self, shard_id: int, domain_id: str, workflow_id: str, serial: bool
    ) -> CurrentExecutionRecord | None:
        rows = await self._c().execute(
            f"SELECT {_CURRENT_COLS} FROM executions WHERE {KEY}",
            cql.current_key(shard_id, domain_id, workflow_id),
            serial_read=serial,
        )
        return _current(rows[0]) if rows and rows[0]["current_run_id"] is not None else None

    async def _read_next_event_id(
        self, shard_id: int, domain_id: str, workflow_id: str, run_id: str
    ) -> int | None:
        rows = await self._c().execute(
            f"SELECT next_event_id FROM executions WHERE {KEY}",
            cql.execution_key(shard_id, domain_id, workflow_id, run_id),
            serial_read=True,
        )
        return int(rows[0]["next_event_id"]) if rows and rows[0]["next_event_id"] is not None else None

    async def _why_not_applied(
        self, shard_id: int, range_id: int, op: CreateWorkflow | UpdateWorkflow
    ) -> StoreError:
        """Which condition of a batch that did not apply failed (Paxos reads of the rows it names)."""
        shard = await self._read_shard(shard_id, serial=True)
        if shard is None or shard.range_id != range_id:
            stored = "absent" if shard is None else shard.range_id
            return ShardOwnershipLost(
                shard_id, f"shard {shard_id}: ownership lost (range_id is {stored}, writer has {range_id})"
            )
        if isinstance(op, CreateWorkflow):
            return await self._why_create_failed(shard_id, op, None)
        found = await self._read_next_event_id(shard_id, op.domain_id, op.workflow_id, op.run_id)
        if found is None:
            return ConditionFailed(f"run {op.run_id!r} of workflow {op.workflow_id!r} does not exist")
        if found != op.condition_next_event_id:
            return ConditionFailed(
                f"run {op.run_id!r}: next_event_id is {found}, the update expected {op.condition_next_event_id}"
            )
        if op.update_current:
            current = await self._read_current(shard_id, op.domain_id, op.workflow_id, serial=True)
            if current is None or current.run_id != op.run_id:
                named = current.run_id if current else "none"
                return ConditionFailed(
                    f"workflow {op.workflow_id!r}: current run is {named}, not {op.run_id!r}"
                )
        if op.new_run is not None:
            return await self._why_create_failed(shard_id, op.new_run, op.new_run.previous_run_id)
        return ConditionFailed(
            f"run {op.run_id!r}: a concurrent write changed the rows this update is conditioned on"
        )

    async def _why_create_failed(
        self, shard_id: int, op: CreateWorkflow, continued: str | None
    ) -> StoreError:
        s = op.snapshot
        current = await self._read_current(shard_id, s.domain_id, s.workflow_id, serial=True)
        named = current.run_id if current else "none"
        if continued is None and op.mode == CreateMode.BRAND_NEW:
            if current is not None:
                return AlreadyExists(
                    f"workflow {s.workflow_id!r} already has a current run {current.run_id!r}",
                    current=current,
                )
        elif current is None or current.run_id != (continued or op.previous_run_id):
            return ConditionFailed(
                f"workflow {s.workflow_id!r}: current run is {named}, not the previous run {continued or op.previous_run_id!r}"
            )
        elif (
            continued is None
            and op.mode == CreateMode.WORKFLOW_ID_REUSE
            and current.state != WorkflowState.COMPLETED
        ):
            return ConditionFailed(
                f"workflow {s.workflow_id!r}: previous run {current.run_id!r} is still open"
            )
        if await self._read_next_event_id(shard_id, s.domain_id, s.workflow_id, s.run_id) is not None:
            return AlreadyExists(f"run {s.run_id!r} of workflow {s.workflow_id!r} already exists")
        return ConditionFailed(
            f"workflow {s.workflow_id!r}: a concurrent write changed the rows this create is conditioned on"
        )

    async def get_execution(
        self, shard_id: int, domain_id: str, workflow_id: str, run_id: str
    ) -> ExecutionRecord:
        rows = await self._c().execute(
            f"SELECT {_EXEC_COLS} FROM executions WHERE {KEY}",
            cql.execution_key(shard_id, domain_id, workflow_id, run_id),
        )
        if not rows or rows[0]["next_event_id"] is None:
            raise NotFound(f"run {run_id} of workflow {workflow_id!r} does not exist")
        r = rows[0]
        maps = {kind: dict(r[column]) for kind, column in cql.MAP_COLUMNS.items() if r[column]}
        return ExecutionRecord(
            domain_id=domain_id,
            workflow_id=workflow_id,
            run_id=run_id,
            next_event_id=int(r["next_event_id"]),
            state=int(r["state"] or 0),
            close_status=int(r["close_status"] or 0),
            create_request_id=r["create_request_id"] or "",
            start_time=int(r["start_time"] or 0),
            info=r["info"] or b"",
            maps=maps,
        )

    async def get_current_execution(
        self, shard_id: int, domain_id: str, workflow_id: str
    ) -> CurrentExecutionRecord:
        current = await self._read_current(shard_id, domain_id, workflow_id, serial=False)
        if current is None:
            raise NotFound(f"workflow {workflow_id!r} has no current run")
        return current

    async def delete_execution(self, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> None:
        c = self._c()
        await c.batch(
            [
                (
                    f"DELETE FROM executions WHERE {KEY}",
                    cql.execution_key(shard_id, domain_id, workflow_id, run_id),
                ),
                (
                    f"DELETE FROM executions WHERE {cql.HISTORY_TXN_PREFIX}",
                    cql.history_txn_prefix(shard_id, domain_id, workflow_id, run_id),
                ),
            ]
        )
        await c.execute(
            f"DELETE FROM executions WHERE {KEY} IF current_run_id = ?",
            (*cql.current_key(shard_id, domain_id, workflow_id), run_id),
        )
        await c.execute(
            "DELETE FROM history_node WHERE domain_id = ? AND workflow_id = ? AND run_id = ?",
            (domain_id, workflow_id, run_id),
        )

    # --- history ------------------------------------------------------------------------------

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
        c = self._c()
        after = _token_int(next_page_token, "history")
        prefix = cql.history_txn_prefix(shard_id, domain_id, workflow_id, run_id)
        if after is not None:
            start = after + 1
        else:
            # Seek to the batch holding min_event_id: the last confirmed node at or before it.
            seek = await c.execute(
                f"SELECT task_id FROM executions WHERE {cql.HISTORY_TXN_PREFIX} AND task_id <= ? "
                "ORDER BY type DESC, domain_id DESC, workflow_id DESC, run_id DESC, visibility_ts DESC, task_id DESC "
                "LIMIT 1",
                (*prefix, min_event_id),
            )
            start = int(seek[0]["task_id"]) if seek else min_event_id
        limit = page_size + 1 if page_size > 0 else _NO_LIMIT
        confirmed = await c.execute(
            "SELECT task_id, history_txn_id, history_last_event_id FROM executions "
            f"WHERE {cql.HISTORY_TXN_PREFIX} AND task_id >= ? AND task_id < ? LIMIT ?",
            (*prefix, start, max_event_id, limit),
        )
        wanted = [
            (int(r["task_id"]), int(r["history_txn_id"]), int(r["history_last_event_id"]))
            for r in confirmed
            if r["history_last_event_id"] is not None and int(r["history_last_event_id"]) >= min_event_id
        ]
        more = page_size > 0 and len(wanted) > page_size
        if more:
            wanted = wanted[:page_size]
        if not wanted:
            return [], None
        nodes = await c.execute(
            "SELECT node_id, txn_id, data FROM history_node WHERE domain_id = ? AND workflow_id = ? AND run_id = ? "
            "AND node_id >= ? AND node_id <= ?",
            (domain_id, workflow_id, run_id, wanted[0][0], wanted[-1][0]),
        )
        data = {(int(n["node_id"]), int(n["txn_id"])): n["data"] or b"" for n in nodes}
        batches: list[HistoryBatch] = []
        for node_id, txn_id, last_event_id in wanted:
            payload = data.get((node_id, txn_id))
            if payload is None:
                raise StoreError(
                    f"history of run {run_id}: node {node_id} of committed transaction {txn_id} is missing "
                    "(read below the consistency it was written with?)"
                )
            batches.append(HistoryBatch(node_id, last_event_id, payload))
        return batches, (_INT64.pack(batches[-1].first_event_id) if more else None)

    # --- queues (the outbox) ------------------------------------------------------------------

    async def get_transfer_tasks(
        self, shard_id: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TransferTask]:
        rows = await self._c().execute(
            "SELECT task_id, task_type, task_domain_id, task_workflow_id, task_run_id, task_data, task_visibility_time "
            f"FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts = 0 AND task_id > ? AND task_id <= ? LIMIT ?",
            (
                *cql.queue_prefix(shard_id, RowType.TRANSFER),
                min_task_id,
                max_task_id,
                limit if limit > 0 else _NO_LIMIT,
            ),
        )
        return [
            TransferTask(
                int(r["task_id"]),
                int(r["task_type"] or 0),
                r["task_domain_id"] or "",
                r["task_workflow_id"] or "",
                r["task_run_id"] or "",
                r["task_data"] or b"",
                int(r["task_visibility_time"] or 0),
            )
            for r in rows
        ]

    async def get_timer_tasks(
        self, shard_id: int, min_time: int, min_task_id: int, max_time: int, limit: int
    ) -> list[TimerTask]:
        if min_time >= max_time:
            return []
        c = self._c()
        prefix = cql.queue_prefix(shard_id, RowType.TIMER)
        n = limit if limit > 0 else _NO_LIMIT
        columns = (
            "visibility_ts, task_id, task_type, task_domain_id, task_workflow_id, task_run_id, task_data"
        )
        # (time, id) >= (min_time, min_task_id) AND time < max_time, as two plain slices (the
        # rows at min_time from min_task_id on, then the later times): no multi-column
        # relations, which some Cassandra versions refuse next to equality restrictions.
        first, later = await asyncio.gather(
            c.execute(
                f"SELECT {columns} FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts = ? AND task_id >= ? LIMIT ?",
                (*prefix, min_time, min_task_id, n),
            ),
            c.execute(
                f"SELECT {columns} FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts > ? AND visibility_ts < ? "
                "LIMIT ?",
                (*prefix, min_time, max_time, n),
            ),
        )
        return [
            TimerTask(
                int(r["visibility_ts"]),
                int(r["task_id"]),
                int(r["task_type"] or 0),
                r["task_domain_id"] or "",
                r["task_workflow_id"] or "",
                r["task_run_id"] or "",
                r["task_data"] or b"",
            )
            for r in (first + later)[:n]
        ]

    async def complete_transfer_task(self, shard_id: int, task_id: int) -> None:
        await self._c().execute(f"DELETE FROM executions WHERE {KEY}", cql.transfer_key(shard_id, task_id))

    async def complete_transfer_tasks(self, shard_id: int, up_to_task_id: int) -> None:
        await self._c().execute(
            f"DELETE FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts = 0 AND task_id <= ?",
            (*cql.queue_prefix(shard_id, RowType.TRANSFER), up_to_task_id),
        )

    async def complete_timer_task(self, shard_id: int, visibility_time: int, task_id: int) -> None:
        await self._c().execute(
            f"DELETE FROM executions WHERE {KEY}", cql.timer_key(shard_id, visibility_time, task_id)
        )

    async def complete_timer_tasks(self, shard_id: int, before_time: int) -> None:
        await self._c().execute(
            f"DELETE FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts < ?",
            (*cql.queue_prefix(shard_id, RowType.TIMER), before_time),
        )

    # --- task lists (matching) ----------------------------------------------------------------

    async def _read_task_list(self, domain_id: str, name: str, task_type: int, serial: bool) -> Row | None:
        rows = await self._c().execute(
            f"SELECT {_TL_COLS} FROM tasks WHERE {_TL_ROW}", (domain_id, name, task_type), serial_read=serial
        )
        return rows[0] if rows and rows[0]["range_id"] is not None else None

    async def lease_task_list(self, domain_id: str, name: str, task_type: int, kind: int) -> TaskListRecord:
        c = self._c()
        key = (domain_id, name, task_type)
        for _ in range(_CAS_RETRIES):
            now = time.time_ns()
            row = await self._read_task_list(domain_id, name, task_type, serial=True)
            if row is None:
                ok = applied(
                    await c.execute(
                        "INSERT INTO tasks (domain_id, task_list_name, task_list_type, row_type, task_id, "
                        f"{_TL_COLS}) VALUES (?, ?, ?, 0, 0, 1, ?, 0, ?, ?) IF NOT EXISTS",
                        (*key, kind, b"", now),
                    )
                )
                record = TaskListRecord(domain_id, name, task_type, kind, 1, 0, b"", now)
            else:
                previous = int(row["range_id"])
                ok = applied(
                    await c.execute(
                        f"UPDATE tasks SET range_id = ?, updated_at = ? WHERE {_TL_ROW} IF range_id = ?",
                        (previous + 1, now, *key, previous),
                    )
                )
                record = _task_list(
                    domain_id, name, task_type, {**row, "range_id": previous + 1, "updated_at": now}
                )
            if ok:
                await c.execute(
                    "INSERT INTO task_lists_by_domain (domain_id, task_list_name, task_list_type) VALUES (?, ?, ?)",
                    key,
                )
                return record
        raise Unavailable(f"task list {name!r}: too much contention for its lease, try again")

    async def update_task_list(self, task_list: TaskListRecord) -> None:
        t = task_list
        rows = await self._c().execute(
            f"UPDATE tasks SET ack_level = ?, list_data = ?, kind = ?, updated_at = ? WHERE {_TL_ROW} IF range_id = ?",
            (
                t.ack_level,
                t.data,
                t.kind,
                t.updated_at or time.time_ns(),
                t.domain_id,
                t.name,
                t.task_type,
                t.range_id,
            ),
        )
        if not applied(rows):
            stored = rows[0].get("range_id") if rows else None
            now = "does not exist" if stored is None else f"has range_id {stored}"
            raise ConditionFailed(
                f"task list {t.name!r} (type {t.task_type}) {now}, expected range_id {t.range_id}"
            )

    async def list_task_lists(self, domain_id: str) -> list[TaskListRecord]:
        c = self._c()
        names = await c.execute(
            "SELECT task_list_name, task_list_type FROM task_lists_by_domain WHERE domain_id = ?",
            (domain_id,),
        )
        keys = [(r["task_list_name"], int(r["task_list_type"])) for r in names]
        rows = await asyncio.gather(*(self._read_task_list(domain_id, n, tt, serial=False) for n, tt in keys))
        found = [
            _task_list(domain_id, n, tt, row)
            for (n, tt), row in zip(keys, rows, strict=True)
            if row is not None
        ]
        return sorted(found, key=lambda t: (t.name, t.task_type))

    async def delete_task_list(self, domain_id: str, name: str, task_type: int, range_id: int) -> None:
        c = self._c()
        key = (domain_id, name, task_type)
        # Tombstones dated now: a lessee that re-creates the list afterwards writes later, so
        # its row and tasks survive the range delete below.
        before = time.time_ns() // 1000
        rows = await c.execute(f"DELETE FROM tasks WHERE {_TL_ROW} IF range_id = ?", (*key, range_id))
        if not applied(rows):
            stored = rows[0].get("range_id") if rows else None
            now = "does not exist" if stored is None else f"has range_id {stored}"
            raise ConditionFailed(
                f"task list {name!r} (type {task_type}) {now}, expected range_id {range_id}"
            )
        await c.execute(
            f"DELETE FROM tasks USING TIMESTAMP ? WHERE {_TL_KEY} AND row_type = 1", (before, *key)
        )
        await c.execute(
            "DELETE FROM task_lists_by_domain USING TIMESTAMP ? WHERE domain_id = ? AND task_list_name = ? "
            "AND task_list_type = ?",
            (before, *key),
        )

    async def create_tasks(
        self, domain_id: str, name: str, task_type: int, range_id: int, tasks: Sequence[TaskListTask]
    ) -> None:
        key = (domain_id, name, task_type)
        statements: list[tuple[str, Sequence[Any]]] = [
            (f"UPDATE tasks SET range_id = ? WHERE {_TL_ROW} IF range_id = ?", (range_id, *key, range_id))
        ]
        for t in tasks:
            statements.append(
                (
                    "INSERT INTO tasks (domain_id, task_list_name, task_list_type, row_type, task_id, data, "
                    "created_time, expiry_time) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                    (*key, t.task_id, t.data, t.created_time, t.expiry_time),
                )
            )
        rows = await self._c().batch(statements)
        if not applied(rows):
            stored = rows[0].get("range_id") if rows else None
            now = "does not exist" if stored is None else f"has range_id {stored}"
            raise ConditionFailed(
                f"task list {name!r} (type {task_type}) {now}, expected range_id {range_id} (lease lost)"
            )

    async def get_tasks(
        self, domain_id: str, name: str, task_type: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TaskListTask]:
        rows = await self._c().execute(
            f"SELECT task_id, data, created_time, expiry_time FROM tasks WHERE {_TL_KEY} AND row_type = 1 "
            "AND task_id > ? AND task_id <= ? LIMIT ?",
            (domain_id, name, task_type, min_task_id, max_task_id, limit if limit > 0 else _NO_LIMIT),
        )
        return [
            TaskListTask(
                int(r["task_id"]), r["data"] or b"", int(r["created_time"] or 0), int(r["expiry_time"] or 0)
            )
            for r in rows
        ]

    async def complete_task(self, domain_id: str, name: str, task_type: int, task_id: int) -> None:
        await self._c().execute(
            f"DELETE FROM tasks WHERE {_TL_KEY} AND row_type = 1 AND task_id = ?",
            (domain_id, name, task_type, task_id),
        )

    async def complete_tasks_less_than(self, domain_id: str, name: str, task_type: int, task_id: int) -> int:
        c = self._c()
        # Cassandra deletes do not report what they removed: count first (the answer is advisory).
        n = _count(
            await c.execute(
                f"SELECT count(*) FROM tasks WHERE {_TL_KEY} AND row_type = 1 AND task_id <= ?",
                (domain_id, name, task_type, task_id),
            )
        )
        await c.execute(
            f"DELETE FROM tasks WHERE {_TL_KEY} AND row_type = 1 AND task_id <= ?",
            (domain_id, name, task_type, task_id),
        )
        return n

    async def count_tasks(self, domain_id: str, name: str, task_type: int, min_task_id: int) -> int:
        return _count(
            await self._c().execute(
                f"SELECT count(*) FROM tasks WHERE {_TL_KEY} AND row_type = 1 AND task_id > ?",
                (domain_id, name, task_type, min_task_id),
            )
        )

    # --- visibility ---------------------------------------------------------------------------

    async def upsert_visibility(self, record: VisibilityRecord) -> None:
        c = self._c()
        r = record
        old = await c.execute(
            "SELECT start_time, close_time FROM visibility_runs WHERE domain_id = ? AND run_id = ?",
            (r.domain_id, r.run_id),
        )
        # The run's keys first: a delete can always find every row written after this.
        await c.execute(
            "INSERT INTO visibility_runs (domain_id, run_id, start_time, close_time) VALUES (?, ?, ?, ?)",
            (r.domain_id, r.run_id, r.start_time, r.close_time),
        )
        values = (
            r.workflow_id,
            r.workflow_type,
            r.execution_time,
            r.task_list,
            r.close_status,
            r.close_time is None,
            r.history_length,
            r.is_cron,
            r.memo,
            json.dumps(r.search_attributes or {}, separators=(",", ":"), sort_keys=True),
            r.update_time,
        )
        columns = (
            "workflow_id, workflow_type, execution_time, task_list, close_status, is_open, history_length, is_cron, "
            "memo, search_attributes, update_time"
        )
        writes: list[Coroutine[Any, Any, object]] = [
            c.execute(
                "INSERT INTO visibility_by_start (domain_id, domain_partition, start_time, run_id, close_time, "
                f"{columns}) VALUES (?, 0, ?, ?, ?, {', '.join(['?'] * 11)})",
                (r.domain_id, r.start_time, r.run_id, r.close_time, *values),
            )
        ]
        if r.close_time is not None:
            writes.append(
                c.execute(
                    "INSERT INTO visibility_by_close (domain_id, domain_partition, close_time, run_id, start_time, "
                    f"{columns}) VALUES (?, 0, ?, ?, ?, {', '.join(['?'] * 11)})",
                    (r.domain_id, r.close_time, r.run_id, r.start_time, *values),
                )
            )
        if old:
            before_start, before_close = old[0]["start_time"], old[0]["close_time"]
            if before_start is not None and before_start != r.start_time:
                writes.append(
                    self._delete_vis_row(r.domain_id, r.run_id, "visibility_by_start", before_start)
                )
            if before_close is not None and before_close != r.close_time:
                writes.append(
                    self._delete_vis_row(r.domain_id, r.run_id, "visibility_by_close", before_close)
                )
        await asyncio.gather(*writes)

    async def _delete_vis_row(self, domain_id: str, run_id: str, table: str, time_value: int) -> None:
        column = _VIS_TABLE_KEY[table]
        await self._c().execute(
            f"DELETE FROM {table} WHERE domain_id = ? AND domain_partition = 0 AND {column} = ? AND run_id = ?",
            (domain_id, time_value, run_id),
        )

    async def delete_visibility(self, domain_id: str, run_id: str) -> None:
        c = self._c()
        old = await c.execute(
            "SELECT start_time, close_time FROM visibility_runs WHERE domain_id = ? AND run_id = ?",
            (domain_id, run_id),
        )
        if not old:
            return
        deletes = []
        if old[0]["start_time"] is not None:
            deletes.append(
                self._delete_vis_row(domain_id, run_id, "visibility_by_start", old[0]["start_time"])
            )
        if old[0]["close_time"] is not None:
            deletes.append(
                self._delete_vis_row(domain_id, run_id, "visibility_by_close", old[0]["close_time"])
            )
        await asyncio.gather(*deletes)
        await c.execute("DELETE FROM visibility_runs WHERE domain_id = ? AND run_id = ?", (domain_id, run_id))

    async def list_workflows(
        self, domain_id: str, query: VisibilityQuery, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[VisibilityRecord], bytes | None]:
        plan = plan_query(query)
        where, params = plan.where(plan.decode_token(next_page_token))
        limit = page_size + 1 if page_size > 0 else _NO_LIMIT
        rows = await self._c().execute(
            f"SELECT {_VIS_COLS} FROM {plan.table} WHERE domain_id = ? AND domain_partition = 0{where} "
            f"ORDER BY {plan.order_by()} LIMIT ?" + (" ALLOW FILTERING" if plan.needs_filtering else ""),
            (domain_id, *params, limit),
        )
        records = [_visibility(r) for r in rows]
        if page_size > 0 and len(records) > page_size:
            records = records[:page_size]
            return records, plan.page_token(records[-1])
        return records, None

    async def count_workflows(self, domain_id: str, query: VisibilityQuery) -> int:
        plan = plan_query(query)
        where, params = plan.where(None)
        return _count(
            await self._c().execute(
                f"SELECT count(*) FROM {plan.table} WHERE domain_id = ? AND domain_partition = 0{where}"
                + (" ALLOW FILTERING" if plan.needs_filtering else ""),
                (domain_id, *params),
            )
        )


def _groups(ops: Sequence[CreateWorkflow | UpdateWorkflow]) -> list[list[int]]:
    """Op indexes grouped so that ops sharing a workflow are in one group, in call order."""
    group_of: dict[tuple[str, str], int] = {}
    members: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        keys = cql.workflows_of(op)
        found = sorted({group_of[k] for k in keys if k in group_of})
        g = found[0] if found else i
        members.setdefault(g, [])
        for other in found[1:]:
            members[g].extend(members.pop(other))
            for k, v in list(group_of.items()):
                if v == other:
                    group_of[k] = g
        members[g].append(i)
        for k in keys:
            group_of[k] = g
    return [sorted(m) for m in members.values()]
